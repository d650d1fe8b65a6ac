"""Translate a file with a trained model: `python training/translate.py MODEL_DIR -i input.ko -o output.en [...]`.

`--help` lists the options (batch size, beam size, length limit); the logic is in `hf_rnn_seq2seq.translate`.
The same command is `hf-rnn-seq2seq translate ...`.
"""

import sys

from hf_rnn_seq2seq_cli import main

if __name__ == "__main__":
    sys.exit(main(["translate", *sys.argv[1:]]))

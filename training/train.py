"""Train an RNN translation model: `python training/train.py training/configs/demo_koen.json [--flag value ...]`.

Run from the repository root (config paths are relative to it). `--help` lists every flag; the logic is in
`hf_rnn_seq2seq.training`.
"""

from hf_rnn_seq2seq.training import main

if __name__ == "__main__":
    main()

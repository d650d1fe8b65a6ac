"""`python -m hf_rnn_seq2seq ...` runs the `hf-rnn-seq2seq` command."""

import sys

from hf_rnn_seq2seq_cli import main

sys.exit(main())

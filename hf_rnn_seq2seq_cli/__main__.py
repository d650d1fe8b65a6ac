"""`python -m hf_rnn_seq2seq_cli ...` runs the `hf-rnn-seq2seq` command."""

import sys

from . import main

sys.exit(main())

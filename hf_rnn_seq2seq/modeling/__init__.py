"""The model: exactly the files that `save_pretrained` copies next to the weights, which is what a Hub repository of
this model holds.

They import nothing but the standard library, torch, transformers and each other (tests/modeling/test_layout.py
reads their imports), so a process without this package loads a saved directory with `trust_remote_code=True`.
The file names are recorded in every saved `config.json` (`auto_map`, `custom_pipelines`): keep them.

Importing this folder registers the model with transformers' Auto classes and the "rnn-translation" and
"rnn-text2text" pipeline tasks.
"""

from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

from . import pipeline  # noqa: F401 (registers the rnn-translation and rnn-text2text pipeline tasks)
from .configuration_rnn_seq2seq import RNNSeq2SeqConfig
from .modeling_rnn_seq2seq import RNNSeq2SeqForConditionalGeneration, RNNSeq2SeqModel, RNNSeq2SeqPreTrainedModel

AutoConfig.register(RNNSeq2SeqConfig.model_type, RNNSeq2SeqConfig)
AutoModel.register(RNNSeq2SeqConfig, RNNSeq2SeqModel)
AutoModelForSeq2SeqLM.register(RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration)

__all__ = [
    "RNNSeq2SeqConfig",
    "RNNSeq2SeqForConditionalGeneration",
    "RNNSeq2SeqModel",
    "RNNSeq2SeqPreTrainedModel",
]

"""hf-rnn-seq2seq: RNN encoder–decoder translation models for the Hugging Face ecosystem.

Importing the package registers the model with transformers' Auto classes, so
`AutoModelForSeq2SeqLM.from_pretrained(directory)` works without `trust_remote_code`, and the
`pipeline("rnn-translation")` task.
"""

from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

from . import pipeline  # registers the "rnn-translation" pipeline task
from .configuration_rnn_seq2seq import RNNSeq2SeqConfig
from .modeling_rnn_seq2seq import (
    RNNSeq2SeqForConditionalGeneration,
    RNNSeq2SeqModel,
    RNNSeq2SeqPreTrainedModel,
)

AutoConfig.register(RNNSeq2SeqConfig.model_type, RNNSeq2SeqConfig)
AutoModel.register(RNNSeq2SeqConfig, RNNSeq2SeqModel)
AutoModelForSeq2SeqLM.register(RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration)

__all__ = [
    "RNNSeq2SeqConfig",
    "RNNSeq2SeqForConditionalGeneration",
    "RNNSeq2SeqModel",
    "RNNSeq2SeqPreTrainedModel",
]

"""hf-rnn-seq2seq: RNN encoder–decoder (sequence-to-sequence) models for the Hugging Face ecosystem.

Importing the package registers the model with transformers' Auto classes, so
`AutoModelForSeq2SeqLM.from_pretrained(directory)` works without `trust_remote_code`, and the
`pipeline("rnn-translation")` and `pipeline("rnn-text2text")` tasks. It imports the model (`modeling/`) and
nothing of the tools: training, data, metrics, ONNX and plotting are imported by whoever uses them.
"""

from .modeling import (
    RNNSeq2SeqConfig,
    RNNSeq2SeqForConditionalGeneration,
    RNNSeq2SeqModel,
    RNNSeq2SeqPreTrainedModel,
)

__all__ = [
    "RNNSeq2SeqConfig",
    "RNNSeq2SeqForConditionalGeneration",
    "RNNSeq2SeqModel",
    "RNNSeq2SeqPreTrainedModel",
]

"""Configuration of the RNN encoder–decoder (Encoder, Decoder, Generator).

This file is copied next to the weights by `save_pretrained`, so it may import only
transformers and the standard library: a process without our package loads it with
`trust_remote_code=True`.
"""

from transformers import PreTrainedConfig

CELL_TYPES = ("gru", "lstm", "rnn")
ATTENTION_TYPES = (None, "dot", "general", "additive")
BRIDGE_TYPES = ("copy", "linear", "zeros")


class RNNSeq2SeqConfig(PreTrainedConfig):
    r"""
    Sizes and options of an RNN sequence-to-sequence model.

    The Encoder reads the source `x_{1:m}` into `h_enc` of shape `(batch, m, num_directions * encoder_hidden_size)`.
    The Decoder starts from the Encoder's final state (mapped by the `bridge`) and reads the previous
    target token; with `attention` it also looks at `h_enc` at every step. The Generator maps each
    decoder output `h_dec_t` (size `hidden_size`) to logits over the target vocabulary.

    Args:
        vocab_size: source vocabulary size (Encoder embedding).
        decoder_vocab_size: target vocabulary size (Decoder embedding and Generator); defaults to `vocab_size`.
        embedding_size: size of the token embeddings of both sides.
        hidden_size: Decoder RNN size, and the size of what the Generator reads.
        encoder_hidden_size: Encoder RNN size per direction. `None` gives `hidden_size // num_directions`,
            so that `h_enc` has the Decoder's size (as OpenNMT-py, JoeyNMT and fairseq do).
        num_layers: RNN depth of both sides, unless `encoder_layers` / `decoder_layers` are given.
        encoder_layers: Encoder RNN depth; `None` gives `num_layers`.
        decoder_layers: Decoder RNN depth; `None` gives `num_layers`.
        cell_type: "gru", "lstm" or "rnn" (Elman, tanh).
        bidirectional: whether the Encoder reads the source in both directions.
        attention: `None` (the textbook model: the source reaches the Decoder only through its initial
            state), "dot" / "general" (Luong et al., 2015) or "additive" (Bahdanau et al., 2015 score).
        input_feeding: feed the previous attentional vector into the Decoder's next input (Luong et al.,
            2015). Requires attention.
        bridge: how the Encoder's final state becomes the Decoder's initial state. "copy" passes it
            through (directions concatenated; needs equal depths and sizes), "linear" learns a projection
            `tanh(W [h_1; ...; h_L])`, "zeros" starts from zeros.
        dropout: dropout on embeddings, between RNN layers and on the Decoder output.
        init_scale: parameters are drawn from `uniform(-init_scale, init_scale)` (Sutskever et al., 2014).
        label_smoothing: the loss's target puts `1 - label_smoothing` on the reference token and spreads
            `label_smoothing` evenly over the target vocabulary (Szegedy et al., 2016), as
            `F.cross_entropy(label_smoothing=...)` and the Trainer's `label_smoothing_factor` do.
        tie_word_embeddings: share the Decoder embedding with the Generator weight (needs
            `embedding_size == hidden_size`).
        copy_attention: the pointer-generator of See et al. (2017): the output distribution mixes the
            Generator's softmax with the attention over the source tokens, `P(w) = p_gen P_vocab(w) +
            (1 - p_gen) sum_{i: x_i = w} a_i`, where a learned `p_gen = sigmoid(w_c c_t + w_s s_t + w_x x_t + b)`
            reads the context, the Decoder's RNN output and its input embedding. The model's `logits` are then
            the log of that mixture. Source ids are copied as target ids, so it needs one joint vocabulary
            (`vocab_size == decoder_vocab_size`, one tokenizer for both sides). Requires attention.
        coverage: the coverage mechanism of See et al. (2017): attention also reads the coverage vector, the sum
            of its weights at the earlier steps, through an extra term `w_c c_i` in the additive score, and
            the loss adds `coverage_loss_weight * sum_i min(a_i, c_i)` at every target token, which
            discourages attending to the same source tokens again. Requires attention="additive".
        coverage_loss_weight: weight of the coverage loss (See et al. use 1.0); used only with `coverage`.
    """

    model_type = "rnn_seq2seq"
    keys_to_ignore_at_inference = ["cache", "encoder_last_hidden_state"]
    attribute_map = {"num_hidden_layers": "decoder_layers"}

    vocab_size: int = 8000
    decoder_vocab_size: int | None = None
    embedding_size: int = 256
    hidden_size: int = 512
    encoder_hidden_size: int | None = None
    num_layers: int = 1
    encoder_layers: int | None = None
    decoder_layers: int | None = None
    cell_type: str = "lstm"
    bidirectional: bool = True
    attention: str | None = "general"
    input_feeding: bool = True
    bridge: str = "copy"
    dropout: float = 0.3
    init_scale: float = 0.1
    label_smoothing: float = 0.0
    tie_word_embeddings: bool = False
    copy_attention: bool = False
    coverage: bool = False
    coverage_loss_weight: float = 1.0
    use_cache: bool = True
    is_encoder_decoder: bool = True
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    decoder_start_token_id: int | None = 1

    def __post_init__(self, **kwargs):
        self.decoder_vocab_size = self.decoder_vocab_size or self.vocab_size
        self.encoder_layers = self.encoder_layers or self.num_layers
        self.decoder_layers = self.decoder_layers or self.num_layers
        if self.attention == "none":  # the spelling a command line gives
            self.attention = None
        if self.encoder_hidden_size is None and self.hidden_size % self.num_directions == 0:
            self.encoder_hidden_size = self.hidden_size // self.num_directions
        super().__post_init__(**kwargs)
        self._check()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def encoder_output_size(self) -> int:
        """Size of one `h_enc` vector: the directions are concatenated."""
        return self.num_directions * self.encoder_hidden_size

    def _check(self) -> None:
        """Refuse a configuration that cannot build a model, saying which field to change."""
        _one_of("cell_type", self.cell_type, CELL_TYPES)
        _one_of("attention", self.attention, ATTENTION_TYPES)
        _one_of("bridge", self.bridge, BRIDGE_TYPES)
        for name in (
            "vocab_size",
            "decoder_vocab_size",
            "embedding_size",
            "hidden_size",
            "encoder_layers",
            "decoder_layers",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"RNNSeq2SeqConfig.{name} must be a positive integer, got {value!r}.")
        if self.encoder_hidden_size is None:
            raise ValueError(
                f"RNNSeq2SeqConfig.hidden_size ({self.hidden_size}) must be even when bidirectional=True and "
                "encoder_hidden_size is not given; set an even hidden_size or an explicit encoder_hidden_size."
            )
        for name in ("dropout", "label_smoothing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"RNNSeq2SeqConfig.{name} must be in [0, 1), got {getattr(self, name)!r}.")
        if self.input_feeding and self.attention is None:
            raise ValueError(
                "RNNSeq2SeqConfig.input_feeding=True needs an attention in ('dot', 'general', 'additive'); "
                "set input_feeding=False for the model without attention."
            )
        if self.copy_attention and self.attention is None:
            raise ValueError(
                "RNNSeq2SeqConfig.copy_attention=True copies through the attention weights: set an attention in "
                "('dot', 'general', 'additive')."
            )
        if self.copy_attention and self.vocab_size != self.decoder_vocab_size:
            raise ValueError(
                f"RNNSeq2SeqConfig.copy_attention=True copies source ids as target ids, so it needs one joint "
                f"vocabulary, but vocab_size={self.vocab_size} and decoder_vocab_size={self.decoder_vocab_size}: "
                "train one tokenizer for both sides."
            )
        if self.coverage and self.attention != "additive":
            raise ValueError(
                f"RNNSeq2SeqConfig.coverage=True adds the coverage vector to the additive score (See et al., 2017); "
                f"set attention='additive' (got {self.attention!r})."
            )
        if self.coverage_loss_weight < 0:
            raise ValueError(f"RNNSeq2SeqConfig.coverage_loss_weight must be >= 0, got {self.coverage_loss_weight!r}.")
        if self.attention is None and self.bridge == "zeros":
            raise ValueError(
                "RNNSeq2SeqConfig.bridge='zeros' with attention=None would leave the Decoder blind to the source: "
                "use bridge='copy' or 'linear', or set an attention."
            )
        if self.attention == "dot" and self.encoder_output_size != self.hidden_size:
            raise ValueError(
                f"RNNSeq2SeqConfig.attention='dot' compares h_dec (hidden_size={self.hidden_size}) with h_enc "
                f"(num_directions * encoder_hidden_size = {self.encoder_output_size}): make them equal or use "
                "attention='general' or 'additive'."
            )
        if self.bridge == "copy" and (
            self.encoder_layers != self.decoder_layers or self.encoder_output_size != self.hidden_size
        ):
            raise ValueError(
                f"RNNSeq2SeqConfig.bridge='copy' needs encoder_layers == decoder_layers ({self.encoder_layers} vs "
                f"{self.decoder_layers}) and num_directions * encoder_hidden_size == hidden_size "
                f"({self.encoder_output_size} vs {self.hidden_size}); use bridge='linear' or 'zeros' otherwise."
            )
        if self.tie_word_embeddings and self.embedding_size != self.hidden_size:
            raise ValueError(
                f"RNNSeq2SeqConfig.tie_word_embeddings=True shares the Decoder embedding ({self.embedding_size}) "
                f"with the Generator weight ({self.hidden_size}): set embedding_size == hidden_size or untie them."
            )
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.decoder_vocab_size:
                raise ValueError(
                    f"RNNSeq2SeqConfig.{name}={value} is outside the target vocabulary "
                    f"(decoder_vocab_size={self.decoder_vocab_size})."
                )


def _one_of(name: str, value, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"RNNSeq2SeqConfig.{name} must be one of {allowed}, got {value!r}.")


__all__ = ["RNNSeq2SeqConfig"]

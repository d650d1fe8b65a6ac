"""A tiny model really learns: reversing random token sequences, trained for a few hundred steps."""

import pytest
import torch

from hf_rnn_seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration

PAD, BOS, EOS = 0, 1, 2
FIRST_WORD, VOCAB = 3, 16
MIN_LEN, MAX_LEN = 3, 7
STEPS, BATCH, LR = 400, 64, 1e-2


def reverse_batch(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded sources ending in EOS, and labels = the reversed words + EOS (-100 after)."""
    lengths = torch.randint(MIN_LEN, MAX_LEN + 1, (n,), generator=g)
    source = torch.full((n, MAX_LEN + 1), PAD)
    labels = torch.full((n, MAX_LEN + 1), -100)
    for i, m in enumerate(lengths.tolist()):
        words = torch.randint(FIRST_WORD, VOCAB, (m,), generator=g)
        source[i, : m + 1] = torch.cat([words, torch.tensor([EOS])])
        labels[i, : m + 1] = torch.cat([words.flip(0), torch.tensor([EOS])])
    return source, (source != PAD).long(), labels


@pytest.mark.slow
def test_learns_to_reverse_sequences():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    config = RNNSeq2SeqConfig(
        vocab_size=VOCAB, embedding_size=32, hidden_size=64, cell_type="gru", attention="general", dropout=0.0
    )
    model = RNNSeq2SeqForConditionalGeneration(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    for _ in range(STEPS):
        source, mask, labels = reverse_batch(BATCH, g)
        loss = model(input_ids=source, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model.eval()
    source, mask, labels = reverse_batch(200, torch.Generator().manual_seed(123))
    out = model.generate(source, attention_mask=mask, max_new_tokens=MAX_LEN + 1)
    correct = 0
    for hypothesis, target in zip(out[:, 1:].tolist(), labels.tolist()):
        target = [t for t in target if t != -100]
        correct += hypothesis[: len(target)] == target
    assert correct / len(out) >= 0.95

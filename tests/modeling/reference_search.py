"""Independent greedy and beam search, to check `generate()` against.

They share nothing with the model's incremental decoding: every step re-runs the full model on the
whole prefix (`use_cache=False`) for one unpadded sentence at a time. So they are right by
construction, slow, and a broken state reorder or padding leak in the fast path shows up as a
difference. The beam search follows transformers' rules (top 2k candidates, the first k that end
become hypotheses scored `sum log p / generated_len ** length_penalty`, its early-stopping
heuristic), written out per sentence with plain lists.
"""

import torch


@torch.no_grad()
def next_log_probs(model, source: torch.Tensor, prefixes: list[list[int]]) -> torch.Tensor:
    """log P(next token | source, prefix) for prefixes of equal length: (len(prefixes), |V|)."""
    n = len(prefixes)
    out = model(
        input_ids=source.unsqueeze(0).expand(n, -1),
        decoder_input_ids=torch.tensor(prefixes),
        use_cache=False,
    )
    return torch.log_softmax(out.logits[:, -1].float(), dim=-1)


def greedy(model, source: torch.Tensor, max_new_tokens: int) -> list[int]:
    config = model.config
    tokens = [config.decoder_start_token_id]
    for _ in range(max_new_tokens):
        tokens.append(int(next_log_probs(model, source, [tokens])[0].argmax()))
        if tokens[-1] == config.eos_token_id:
            break
    return tokens


def beam_search(
    model,
    source: torch.Tensor,
    num_beams: int,
    max_new_tokens: int,
    length_penalty: float = 1.0,
    early_stopping: bool | str = False,
    trace: list | None = None,
) -> list[tuple[float, list[int]]]:
    """Finished hypotheses of one sentence, best first, as (score, tokens starting with the start token).

    `trace`, if given, gets one entry per step: (the best running beam's summed score, finished scores)."""
    config = model.config
    running = [(0.0, [config.decoder_start_token_id])]
    finished: list[tuple[float, list[int]]] = []
    can_improve = True
    for step in range(max_new_tokens):
        generated = step + 1
        log_probs = next_log_probs(model, source, [tokens for _, tokens in running])
        candidates = [
            (score + float(lp), tokens + [token])
            for (score, tokens), row in zip(running, log_probs)
            for token, lp in enumerate(row)
        ]
        candidates = sorted(candidates, key=lambda c: -c[0])[: 2 * num_beams]
        ends = [tokens[-1] == config.eos_token_id or generated == max_new_tokens for _, tokens in candidates]

        full = len(finished) == num_beams and early_stopping is True
        if can_improve and not full:
            finished += [
                (score / generated**length_penalty, tokens)
                for (score, tokens), end in zip(candidates[:num_beams], ends[:num_beams])
                if end
            ]
            finished = sorted(finished, key=lambda h: -h[0])[:num_beams]
        running = [c for c, end in zip(candidates, ends) if not end][:num_beams]
        if trace is not None:
            trace.append((running[0][0] if running else None, [score for score, _ in finished]))

        if early_stopping == "never" and length_penalty > 0:
            best_length = max_new_tokens
        else:
            best_length = generated
        if len(finished) == num_beams and running:
            can_improve &= running[0][0] / best_length**length_penalty > finished[-1][0]
        if not can_improve or not running or (early_stopping is True and len(finished) == num_beams):
            break
    return finished

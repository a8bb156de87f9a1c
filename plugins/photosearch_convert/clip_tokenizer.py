"""open_clip's CLIP BPE tokenizer rebuilt in Hugging Face `tokenizers` format (tokenizer.json).

Built from the BPE merges open_clip ships (bpe_simple_vocab_16e6.txt.gz), following
open_clip.tokenizer.SimpleTokenizer: the vocabulary is the 256 byte symbols, the same with
"</w>", then one entry per merge, then <|startoftext|> (49406) and <|endoftext|> (49407).
Text is NFC-normalised, whitespace collapsed and lower-cased, split with CLIP's regex, and
wrapped in start/end tokens. open_clip additionally runs ftfy.fix_text first; the app does not,
which benchmarks/bench_convert_parity.py measures on COCO captions.
"""

from __future__ import annotations

import gzip
from pathlib import Path

START, END = "<|startoftext|>", "<|endoftext|>"
SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes), strict=True))


def build_clip_tokenizer(bpe_path: Path, target: Path) -> Path:
    """Write tokenizer.json for open_clip's default tokenizer to ``target``."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    with gzip.open(bpe_path) as packed:
        lines = packed.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    symbols = list(bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab_list += [START, END]
    vocab = {token: index for index, token in enumerate(vocab_list)}
    tokenizer = Tokenizer(
        models.BPE(
            vocab=vocab,
            merges=merges,
            continuing_subword_prefix="",
            end_of_word_suffix="</w>",
            unk_token=END,
            fuse_unk=False,
        )
    )
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.RobertaProcessing(
        (END, vocab[END]), (START, vocab[START]), trim_offsets=False, add_prefix_space=False
    )
    tokenizer.add_special_tokens([START, END])
    target.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(target))
    return target

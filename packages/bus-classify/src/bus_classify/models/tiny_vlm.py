"""Tiny random-weight CLIP and LLaVA folders, built offline (tests, demo, smoke checks).

The word-level tokenizer sets pad/bos/eos ids explicitly; the end-of-text id is not 2, so
CLIP pools the embedding at the real end-of-text token instead of the legacy arg-max position
(with a wrong id every prompt collapses to the same text embedding).
"""

from __future__ import annotations

from pathlib import Path

import yaml

_BASE = [
    "<pad>",
    "<unk>",
    "<s>",
    "</s>",
    "<image>",
    ".",
    ",",
    ":",
    "?",
    '"',
    "user",
    "assistant",
    "label",
    "reason",
    "answer",
    "in",
    "the",
    "form",
    "then",
    "and",
    "one",
    "sentence",
    "or",
    "there",
    "image",
    "this",
]


def _vocab_words() -> list[str]:
    from importlib import resources

    cfg = yaml.safe_load(
        resources.files("bus_classify.configs").joinpath("prompts.yaml").read_text()
    )
    words = list(_BASE)
    texts = cfg["lump"] + cfg["no_lump"] + [cfg["question"], "this is a photo of"]
    for t in texts:
        for w in (
            t.lower()
            .replace(".", " ")
            .replace("?", " ")
            .replace(":", " ")
            .replace('"', " ")
            .replace(",", " ")
            .split()
        ):
            if w not in words:
                words.append(w)
    return words


def tiny_tokenizer(max_length: int = 64):
    """Word-level fast tokenizer: lower-case, ``<s> ... </s>`` template, ``<image>`` special."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = _vocab_words()
    vocab = {w: i for i, w in enumerate(words)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split("<image>", "isolated"), pre_tokenizers.Whitespace()]
    )
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", vocab["<s>"]), ("</s>", vocab["</s>"])]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
    )
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    return tok


def build_tiny_clip(out: str | Path, image_size: int = 32, seed: int = 0) -> Path:
    """Save a random tiny CLIP + processor usable by the zero-shot pipeline."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(seed)
    tok = tiny_tokenizer()
    cfg = CLIPConfig(
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=64,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=image_size,
            patch_size=8,
        ),
        projection_dim=16,
    )
    out = Path(out)
    CLIPModel(cfg).save_pretrained(out)
    ip = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    CLIPProcessor(image_processor=ip, tokenizer=tok).save_pretrained(out)
    return out


_CHAT = (
    "{% for m in messages %}{{ m['role'] }} : {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}"
    "{% endfor %}{% if add_generation_prompt %}assistant : {% endif %}"
)


def build_tiny_llava(out: str | Path, image_size: int = 32, seed: int = 0) -> Path:
    """Save a random tiny LLaVA (CLIP vision tower + Llama text model) + processor."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    torch.manual_seed(seed)
    tok = tiny_tokenizer(max_length=512)
    image_id = tok.convert_tokens_to_ids("<image>")
    vc = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=8,
    )
    tc = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    cfg = LlavaConfig(
        vision_config=vc,
        text_config=tc,
        image_token_index=image_id,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
    )
    out = Path(out)
    LlavaForConditionalGeneration(cfg).save_pretrained(out)
    ip = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    LlavaProcessor(
        image_processor=ip,
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="full",
        chat_template=_CHAT,
        image_token="<image>",
        num_additional_image_tokens=1,
    ).save_pretrained(out)
    return out


def build_tiny_vlms(out: str | Path) -> list[Path]:
    """Both tiny random folders under ``out``: ``tiny-clip`` and ``tiny-llava``."""
    out = Path(out)
    return [build_tiny_clip(out / "tiny-clip"), build_tiny_llava(out / "tiny-llava")]

"""A random Llama shaped like SmolLM2-135M and saved the way users get such models (nothing
downloaded): hidden 576, MLP 1536, 9 heads / 3 KV heads, vocabulary 49152, tied embeddings
(no lm_head.weight in the file), bfloat16, transformers' default initialisation with
torch.manual_seed(0); 7 layers instead of 30 (~100 MiB). Saved as one file and as shards, with a
word-level tokenizer built offline (every id a word). Usage: make_model.py OUT_DIR"""
import json
import os
import sys

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

VOCAB = 49152


def tokenizer(vocab: int = VOCAB) -> PreTrainedTokenizerFast:
    """A word-level tokenizer of `vocab` ids built offline: every id is a word (w0, w1, ...), so
    whatever a random model generates decodes to text."""
    words = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(vocab - 3)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def save(model, folder: str, max_shard_size: str, readme: str) -> None:
    """Saves `model` as transformers does (shards above `max_shard_size`, then an index), with the
    word-level tokenizer of its vocabulary and a one-line README."""
    model.save_pretrained(folder, max_shard_size=max_shard_size)
    tokenizer(model.config.vocab_size).save_pretrained(folder)
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(readme + "\n")


def main(out: str) -> None:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=7,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=2048,
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    for name, shard in (("single", "10GB"), ("sharded", "40MB")):
        save(model, os.path.join(out, name), shard, "# random SmolLM2-shaped llama, tied embeddings, bfloat16 (kquant loader test)")
    print(json.dumps({"parameters": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main(sys.argv[1])

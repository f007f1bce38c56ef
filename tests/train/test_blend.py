"""Weight-space blending of the tuned model with the pretrained one, on the real tiny.en weights."""

from __future__ import annotations

import pytest
import torch

from atc_whisper.errors import ConfigError, ModelError
from atc_whisper.train.blend import blend_with_base, is_embedding


@pytest.fixture(scope="module")
def base(tiny_en):
    from atc_whisper.models.load import load_hf

    return load_hf(tiny_en.hf_dir)[0]


@pytest.fixture
def tuned(tiny_en):
    """tiny.en with every decoder weight moved, standing in for a fine-tuned decoder."""
    from atc_whisper.models.load import load_hf

    model = load_hf(tiny_en.hf_dir)[0]
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".decoder." in name:
                param.add_(torch.randn(param.shape, generator=generator) * 0.01)
    return model


def test_blend_mixes_each_weight_with_its_share(tuned, base):
    before = {n: p.detach().clone() for n, p in tuned.named_parameters()}
    pretrained = dict(base.named_parameters())
    counts = blend_with_base(tuned, base, share=0.25, embedding_share=0.5)
    for name, param in tuned.named_parameters():
        s = 0.5 if is_embedding(name) else 0.25
        assert torch.allclose(param, (1 - s) * before[name] + s * pretrained[name], atol=1e-6), name
    assert counts["embeddings"] == 1 and counts["other"] > 50  # tied: the output layer is the embedding
    assert tuned.proj_out.weight.data_ptr() == tuned.model.decoder.embed_tokens.weight.data_ptr()


def test_blend_extremes(tuned, base):
    before = {n: p.detach().clone() for n, p in tuned.named_parameters()}
    assert blend_with_base(tuned, base, share=0.0, embedding_share=0.0) == {"embeddings": 0, "other": 0}
    assert all(torch.equal(p, before[n]) for n, p in tuned.named_parameters())
    blend_with_base(tuned, base, share=1.0, embedding_share=1.0)
    pretrained = dict(base.named_parameters())
    assert all(torch.allclose(p, pretrained[n], atol=1e-7) for n, p in tuned.named_parameters())


def test_blend_refuses_bad_shares_and_other_architectures(tuned, base):
    with pytest.raises(ConfigError, match=r"share must be within 0-1, got 1\.5; set train\.base_blend "):
        blend_with_base(tuned, base, share=1.5, embedding_share=0.0)
    with pytest.raises(ConfigError, match=r"set train\.base_blend_embeddings "):
        blend_with_base(tuned, base, share=0.5, embedding_share=-0.1)
    with pytest.raises(ModelError, match=r"cannot blend weight: the pretrained model has \(2, 3\)"):
        blend_with_base(torch.nn.Linear(2, 2), torch.nn.Linear(3, 2), share=0.5, embedding_share=0.5)


def test_weights_training_did_not_move_stay_exact(tuned, base):
    pretrained = dict(base.named_parameters())
    blend_with_base(tuned, base, share=0.1, embedding_share=0.7)
    encoder = [n for n, _ in tuned.named_parameters() if ".encoder." in n]
    assert encoder and all(torch.equal(dict(tuned.named_parameters())[n], pretrained[n]) for n in encoder)


def test_blend_saved_uses_a_given_base_as_the_loaded_one(tiny_en, base):
    from atc_whisper.models.load import load_hf
    from atc_whisper.train.blend import blend_saved

    loaded, _ = load_hf(tiny_en.hf_dir)
    given, _ = load_hf(tiny_en.hf_dir)
    for model in (loaded, given):
        with torch.no_grad():
            model.model.decoder.layers[0].fc1.weight.mul_(2.0)
    before_base = base.model.decoder.layers[0].fc1.weight.detach().clone()
    a = blend_saved(loaded, tiny_en.hf_dir, share=0.5, embedding_share=0.0)
    b = blend_saved(given, tiny_en.hf_dir, share=0.5, embedding_share=0.0, base=base)
    assert a == b and a["other"] > 0
    assert torch.equal(loaded.model.decoder.layers[0].fc1.weight, given.model.decoder.layers[0].fc1.weight)
    assert torch.equal(base.model.decoder.layers[0].fc1.weight, before_base)  # the given base is only read

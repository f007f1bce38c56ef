"""The encoder run over any number of frames and split at a layer, against transformers and CTranslate2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atc_whisper.audio.io import load_audio
from atc_whisper.models import encoder_pass


@pytest.fixture(scope="module")
def model_and_processor(tiny_en):
    from atc_whisper.models.load import load_hf

    model, processor = load_hf(tiny_en.hf_dir)
    return model.eval(), processor


@pytest.fixture(scope="module")
def features(model_and_processor, synth_clip) -> torch.Tensor:
    _, processor = model_and_processor
    audio = load_audio(synth_clip("Speedbird one two three, climb flight level three five zero"))
    return processor.feature_extractor(audio, sampling_rate=16_000, return_tensors="pt").input_features


def test_split_anywhere_is_the_whole_encoder(model_and_processor, features) -> None:
    model, _ = model_and_processor
    encoder = model.get_encoder()
    with torch.inference_mode():
        reference = encoder(features).last_hidden_state
        for split in range(encoder_pass.layer_count(encoder) + 1):
            hidden = encoder_pass.lower(encoder, features, split)
            assert hidden.shape == (1, 1500, 384)
            out = encoder_pass.upper(encoder, hidden, split)
            torch.testing.assert_close(out, reference, atol=1e-4, rtol=1e-4)
    # Split inside: the lower part stops before the final layer norm; at the top it includes it.
    assert not torch.allclose(encoder_pass.lower(encoder, features, 2), reference, atol=1e-2)


def test_short_pass_is_what_ctranslate2_computes(model_and_processor, features, tiny_en, session_workspace) -> None:
    """A 6 s pass through the PyTorch encoder gives CTranslate2's output for the same frames."""
    import ctranslate2

    from atc_whisper.models.export import export_ct2

    model, _ = model_and_processor
    short = features[..., :600].contiguous()
    with torch.inference_mode():
        ours = encoder_pass.encode(model.get_encoder(), short)[0].numpy()
    ct2 = ctranslate2.models.Whisper(str(export_ct2(tiny_en.hf_dir, session_workspace, quantization="default")),
                                     compute_type="float32", intra_threads=2)
    theirs = np.array(ct2.encode(ctranslate2.StorageView.from_array(short.numpy())))[0]
    assert ours.shape == theirs.shape == (300, 384)
    assert np.linalg.norm(ours - theirs) / np.linalg.norm(theirs) < 1e-4
    # Not the whole window cut short: the positions after the clip see only the pass.
    with torch.inference_mode():
        whole = model.get_encoder()(features).last_hidden_state[0, :300].numpy()
    assert np.linalg.norm(ours - whole) / np.linalg.norm(whole) > 1e-3


def test_bad_splits_and_lengths_are_refused(model_and_processor, features) -> None:
    encoder = model_and_processor[0].get_encoder()
    with pytest.raises(ValueError, match="has 4 layers; cannot split it after layer 5"):
        encoder_pass.lower(encoder, features, 5)
    with pytest.raises(ValueError, match="more than the encoder's window"):
        encoder_pass.lower(encoder, torch.zeros(1, 80, 3200), 4)

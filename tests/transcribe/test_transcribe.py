"""File transcription with both engines on real espeak-ng speech and the real tiny.en weights.

Covers formats, sample rates and stereo, long files cut into windows, confidence, output
formats, callsign lists, and every bad input through the real ``atc-whisper`` entry point.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from atc_whisper.config import Settings
from atc_whisper.errors import DataError
from atc_whisper.phraseology import normalize_atc
from atc_whisper.transcribe import Transcription, load_engine
from atc_whisper.transcribe.files import split_windows, transcribe_file
from atc_whisper.transcribe.formats import parse_srt, srt_document, text_line
from atc_whisper.transcribe.types import REASON_REPETITION, FileSegment

SENTENCE = "Speedbird one two three, climb flight level three five zero, then turn left heading two seven zero"
TOWER = "Lufthansa four five six, contact tower one one eight decimal seven"
SR = 16_000


def _words(text: str) -> set[str]:
    return set(normalize_atc(text).split())


@pytest.fixture(scope="module")
def settings() -> Settings:
    # One thread each: two OpenMP/CTranslate2 threads stall on a shared 2-core machine.
    return Settings().replace(model={"threads": 1, "offline": True, "device": "cpu"})


@pytest.fixture(scope="module")
def engines(tiny_en, session_workspace, settings):
    return {name: load_engine(tiny_en.hf_dir, settings, session_workspace, engine=name) for name in ("ct2", "hf")}


@pytest.fixture(scope="module")
def atc_wav(synth_clip) -> Path:
    return synth_clip(SENTENCE)


@pytest.fixture(scope="module")
def variants(atc_wav, tmp_path_factory) -> dict[str, Path]:
    """The ATC sentence as 8 kHz WAV, 44.1 kHz stereo FLAC and 44.1 kHz stereo MP3 (ffmpeg)."""
    folder = tmp_path_factory.mktemp("variants")
    specs = {"wav_8k": ("clip8k.wav", ["-ar", "8000"]),
             "flac_44k_stereo": ("clip44k.flac", ["-ar", "44100", "-ac", "2"]),
             "mp3_stereo": ("clip.mp3", ["-ar", "44100", "-ac", "2", "-codec:a", "libmp3lame", "-b:a", "64k"])}
    out = {}
    for key, (name, args) in specs.items():
        target = folder / name
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(atc_wav), *args, str(target)],
                       check=True)
        out[key] = target
    info = sf.info(out["flac_44k_stereo"])
    assert (info.samplerate, info.channels) == (44100, 2)
    return out


@pytest.mark.parametrize("engine_name", ["ct2", "hf"])
def test_formats_rates_and_stereo_with_both_engines(engines, variants, settings, engine_name):
    engine = engines[engine_name]
    for key, path in variants.items():
        segments = list(transcribe_file(path, engine, settings))
        assert len(segments) == 1, key
        words = _words(segments[0].text)
        assert {"climb", "heading"} <= words, (key, segments[0].text)
        assert segments[0].file == str(path)
        assert 0.0 <= segments[0].start_s < segments[0].end_s <= sf.info(path).duration + 0.05


def test_engines_share_one_result_type(engines, atc_wav):
    from atc_whisper.audio.io import load_audio

    audio = load_audio(atc_wav)
    results = {name: engine.transcribe(audio) for name, engine in engines.items()}
    for name, result in results.items():
        assert isinstance(result, Transcription) and result.engine == name
        assert result.duration_s == pytest.approx(len(audio) / SR)
        data = result.as_dict()
        for key in ("text", "segments", "avg_logprob", "no_speech_prob", "compression_ratio", "duration_s",
                    "latency_s", "low_confidence", "engine"):
            assert key in data
        json.dumps(data)
    # Different numerics (int8 vs fp32), same speech: the key words agree.
    assert {"climb", "heading"} <= _words(results["ct2"].text) & _words(results["hf"].text)


@pytest.mark.parametrize("engine_name", ["ct2", "hf"])
def test_confidence_drops_on_a_heavily_noised_clip(engines, atc_wav, engine_name):
    from atc_whisper.audio.io import load_audio

    clean = load_audio(atc_wav)
    rng = np.random.default_rng(7)
    power = float(np.sqrt(np.mean(clean**2)))
    noisy = (clean + rng.standard_normal(len(clean)).astype(np.float32) * power * 10 ** (5 / 20)).astype(np.float32)
    engine = engines[engine_name]
    clean_result, noisy_result = engine.transcribe(clean), engine.transcribe(noisy)  # noisy: SNR -5 dB
    assert noisy_result.avg_logprob < clean_result.avg_logprob - 0.2
    assert noisy_result.low_confidence and noisy_result.reasons
    assert 0.0 <= noisy_result.no_speech_prob <= 1.0 and noisy_result.compression_ratio >= 0.0


def test_ct2_batches_bounds_and_catches_loops(engines, synth_clip, monkeypatch):
    """The CTranslate2 path applies the same bound and loop rules as generate_bounded."""
    from atc_whisper.audio.io import load_audio
    from atc_whisper.config import DecodeSettings
    from atc_whisper.transcribe.decoding import max_new_tokens_for, truncate_repetition
    from atc_whisper.transcribe.engines import CT2Engine

    engine = engines["ct2"]
    count = lambda text: len(engines["hf"].processor.tokenizer.encode(" " + text, add_special_tokens=False))  # noqa: E731
    atc, tower = load_audio(synth_clip(SENTENCE)), load_audio(synth_clip(TOWER))
    # Greedy decoding does not depend on what else is in the batch (sampled fallbacks do).
    greedy = CT2Engine(engine.model_dir, DecodeSettings(temperatures=[0.0]), threads=1)
    batch = greedy.transcribe_batch([atc, tower])
    assert [r.text for r in batch] == [greedy.transcribe(atc).text, greedy.transcribe(tower).text]
    assert [r.duration_s for r in batch] == pytest.approx([len(atc) / SR, len(tower) / SR])  # input order kept

    tight_decode = DecodeSettings(max_words_per_second=0.1, temperatures=[0.0])
    tight = CT2Engine(engine.model_dir, tight_decode, threads=1)
    result = tight.transcribe(atc)
    assert count(result.text) <= max_new_tokens_for(len(atc) / SR, tight_decode, prefix_tokens=2)
    assert "length_bound" in result.reasons and result.low_confidence

    loop = load_audio(synth_clip(" ".join(["climb"] * 16)))
    looping = greedy.transcribe(loop)  # greedy decoding loops on this clip: caught, cut and flagged
    assert "repetition" in looping.reasons and looping.low_confidence
    assert truncate_repetition(looping.text) == (looping.text, False)
    tried: list[float] = []
    generate = engine.generate
    monkeypatch.setattr(engine, "generate", lambda *a: (tried.append(a[3]), generate(*a))[1])
    result = engine.transcribe(loop)
    # The compression-ratio check triggered the fallback; which draw is kept depends on
    # CTranslate2's sampling stream (see ct2_engine), so only that it was tried is certain.
    assert tried[:2] == engine.decode.temperatures[:2]
    assert count(result.text) <= max_new_tokens_for(len(loop) / SR, engine.decode, prefix_tokens=2)
    assert result.low_confidence and truncate_repetition(result.text) == (result.text, False)


def test_ct2_fallback_reuses_the_encoder_output(engines, synth_clip):
    """A retry at a higher temperature decodes again but does not encode again (live latency),
    not even when only part of a batch needs it (the encoder output is held as an array on a CPU)."""
    from atc_whisper.audio.io import load_audio
    from atc_whisper.config import DecodeSettings
    from atc_whisper.transcribe.engines import CT2Engine

    # Retry only runaway output (as live mode does), so that the clean clip is decoded once; the full
    # 30 s window, on which this clip loops at temperature 0 and is retried.
    engine = CT2Engine(engines["ct2"].model_dir, DecodeSettings(fallback_on_low_logprob=False, encoder_pad_s=30.0),
                       threads=1)
    encoded: list[int] = []
    real_encode = engine.model.encode

    def counting(features):
        if np.ptp(features) > 0:  # not the silence completing a short pass (computed once per level)
            encoded.append(len(features))
        return real_encode(features)

    engine.model.encode = counting
    # (temperature, rows) of each decoding pass; which attempt is kept in the end (the last, or
    # the likeliest when every one loops) is not what this test is about
    passes: list[tuple[float, int]] = []
    real_generate = engine.generate

    def generating(states, prompt, bounds, temperature, seed):
        passes.append((temperature, len(bounds)))
        return real_generate(states, prompt, bounds, temperature, seed)

    engine.generate = generating
    loop = load_audio(synth_clip(" ".join(["climb"] * 16)))
    result = engine.transcribe(loop)
    assert REASON_REPETITION in result.reasons
    assert len(passes) > 1 and passes[1][0] > 0.0 and encoded == [1]  # retried on the same encoder output
    encoded.clear()
    passes.clear()
    tower = load_audio(synth_clip(TOWER))
    batch = engine.transcribe_batch([tower, loop])
    assert batch[0].temperature == 0.0 and REASON_REPETITION not in batch[0].reasons
    # the first pass decodes both clips, every retry only the looping one
    assert passes[0] == (0.0, 2) and len(passes) > 1 and all(t > 0.0 and rows == 1 for t, rows in passes[1:])
    assert encoded == [2]  # the retry of one clip of the batch uses its rows of the batch's output


def test_ct2_short_encoder_passes_decode_like_the_full_window(engines, synth_clip):
    """The CPU default: each clip is encoded with decode.encoder_pad_s of silence after it, completed
    with the encoder output of silence to a decode.context_s context; the text stays close to the
    whole window's, and a clip's transcript does not depend on the clips batched with it."""
    from atc_whisper.audio.io import load_audio
    from atc_whisper.config import DecodeSettings
    from atc_whisper.evaluate.metrics import wer
    from atc_whisper.transcribe.engines import CT2Engine

    # Each clip with the 0.2 s lead-in the segmenter keeps before a transmission (segment.speech_pad_ms):
    # a short pass over a word at sample 0 mishears it ("Peebert 1, 2, 3"), and no cut transmission starts so.
    lead = np.zeros(int(0.2 * SR), dtype=np.float32)
    clips = [np.concatenate([lead, load_audio(synth_clip(text))]) for text in (SENTENCE, TOWER, "Roger.")]
    # float32: CTranslate2's int8 kernels differ between CPUs (see tests/golden), which moves these
    # confidence figures by more than the tolerance below on some machines.
    default = DecodeSettings(temperatures=[0.0], compute_type="float32")
    short = CT2Engine(engines["ct2"].model_dir, default, threads=1)
    full = CT2Engine(engines["ct2"].model_dir, DecodeSettings(temperatures=[0.0], encoder_pad_s=30.0, context_s=30.0,
                                                              compute_type="float32"), threads=1)
    frames = [short.encoder_frames(len(c)) for c in clips]
    assert frames == [math.ceil(len(c) / SR + default.encoder_pad_s) * 100 for c in clips]
    assert max(frames) < 3000 and full.encoder_frames(len(clips[0])) == 3000
    features, states = short.encode(clips, [])
    assert features is None and len(states) == len(clips)
    for clip, clip_frames, state in zip(clips, frames, states, strict=True):
        # The decoder attends to the context (10 s = 500 positions) or the whole pass if longer.
        assert state.shape[0] == max(clip_frames, int(default.context_s * 100)) // 2
        # Each clip is encoded at its own length: the same states as when it is encoded alone.
        np.testing.assert_array_equal(state, short.encode([clip], [])[1][0])
    # The log-mel of the encoded frames is exactly that of the padded 30 s window (the engine projects
    # onto the mel filters in float64, so BLAS blocking by width no longer shows in float32).
    np.testing.assert_array_equal(short._features(clips[0], frames[0]), full._features(clips[0])[:, :frames[0]])

    keywords = [{"climb", "flight", "level", "left", "heading"}, {"contact", "tower"}, {"roger"}]
    mine, theirs = short.transcribe_batch(clips), full.transcribe_batch(clips)
    for ours, whole, words in zip(mine, theirs, keywords, strict=True):
        assert words <= _words(ours.text) and words <= _words(whole.text), (ours.text, whole.text)
        assert abs(ours.avg_logprob - whole.avg_logprob) < 0.25 and ours.no_speech_prob < 0.6
    assert [t.text for t in mine] == [short.transcribe(c).text for c in clips]  # batch-invariant
    references = [SENTENCE, TOWER, "Roger."]
    assert wer(references, [t.text for t in mine]) <= wer(references, [t.text for t in theirs]) + 0.1


def test_ct2_short_context_keeps_the_no_speech_rule():
    """With a cut context the model's no-speech probability runs high; it is reported on the whole
    window's scale, so speech is not emptied and static still is."""
    from atc_whisper.transcribe.window import NO_SPEECH_LOGIT_SHIFT, whole_window_no_speech

    for p in (0.05, 0.5, 0.9):
        logit = math.log(p / (1 - p)) - NO_SPEECH_LOGIT_SHIFT
        assert whole_window_no_speech(p) == pytest.approx(1 / (1 + math.exp(-logit)))
    assert whole_window_no_speech(0.0) < 1e-6 and whole_window_no_speech(1.0) > 1 - 1e-6
    assert whole_window_no_speech(0.75) < 0.6 < whole_window_no_speech(0.85)  # a 0.6 threshold reads ~0.8


def test_split_windows_cut_in_pauses():
    rng = np.random.default_rng(0)
    speech = lambda s: rng.standard_normal(int(s * SR)).astype(np.float32) * 0.3  # noqa: E731
    pause = lambda s: np.zeros(int(s * SR), dtype=np.float32)  # noqa: E731
    # Loud 0-12 s, pause 12-14 s, loud 14-26, pause 26-27, loud 27-50, pause 50-52, loud 52-70.
    audio = np.concatenate([speech(12), pause(2), speech(12), pause(1), speech(23), pause(2), speech(18)])
    windows = split_windows(audio, 30.0)
    assert windows[0][0] == 0 and windows[-1][1] == len(audio)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
    assert all(0 < end - start <= 30 * SR for start, end in windows)
    cuts_s = [end / SR for _, end in windows[:-1]]
    assert 26.0 <= cuts_s[0] <= 27.0  # the pause in the last third of the first window
    assert 50.0 <= cuts_s[1] <= 52.0
    assert split_windows(audio[: 10 * SR], 30.0) == [(0, 10 * SR)]


@pytest.fixture(scope="module")
def long_wav(synth_clip, tmp_path_factory) -> tuple[Path, list[float]]:
    """~40 s: three transmissions separated by ~10 s of faint static; returns path and start times."""
    from atc_whisper.audio.io import load_audio, write_wav

    rng = np.random.default_rng(3)
    texts = [SENTENCE, "Ryanair two alfa bravo, descend altitude four thousand feet", TOWER]
    parts, starts, t = [], [], 0.0
    for i, text in enumerate(texts):
        clip = load_audio(synth_clip(text))
        starts.append(t)
        parts.append(clip)
        t += len(clip) / SR
        if i < len(texts) - 1:
            gap = rng.standard_normal(10 * SR).astype(np.float32) * 0.002
            parts.append(gap)
            t += 10.0
    audio = np.concatenate(parts)
    assert len(audio) / SR > 30.0
    path = tmp_path_factory.mktemp("long") / "session.flac"
    write_wav(path.with_suffix(".wav"), audio)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(path.with_suffix(".wav")), str(path)],
                   check=True)
    return path, starts


def test_long_file_is_cut_into_windows_with_file_timestamps(engines, settings, long_wav):
    path, starts = long_wav
    duration = sf.info(path).duration
    segments = list(transcribe_file(path, engines["ct2"], settings))
    assert len(segments) >= 2
    assert all(a.start_s < b.start_s and a.end_s <= b.start_s + 0.5 for a, b in itertools.pairwise(segments))
    assert all(0.0 <= s.start_s < s.end_s <= duration + 0.05 for s in segments)
    last = segments[-1]
    assert {"contact", "tower"} <= _words(last.text)
    # The last transmission begins at starts[2]: its timestamp is in file time, not window time.
    assert abs(last.start_s - starts[2]) < 1.0
    assert {"climb", "heading"} <= _words(" ".join(s.text for s in segments))


def _segment(**kw) -> FileSegment:
    base = dict(file="a.wav", start_s=1.25, end_s=4.5, text="speedbird one two three climb", avg_logprob=-0.3,
                no_speech_prob=0.02, compression_ratio=1.1, low_confidence=False)
    return FileSegment(**{**base, **kw})


def test_srt_round_trip_and_low_confidence_flag():
    segments = [_segment(), _segment(start_s=3661.5, end_s=3663.0, text="roger", low_confidence=True,
                                     reasons=["low_logprob"])]
    cues = parse_srt(srt_document(segments))
    assert [(c[0], c[1]) for c in cues] == [(1.25, 4.5), (3661.5, 3663.0)]
    assert cues[0][2] == "speedbird one two three climb"
    assert cues[1][2].startswith("roger") and "LOW CONFIDENCE" in cues[1][2]
    assert "LOW CONFIDENCE: low_logprob" in text_line(segments[1], show_file=True)
    assert "LOW CONFIDENCE" not in text_line(segments[0], show_file=False)
    with pytest.raises(DataError, match="SRT"):
        parse_srt("1\nnot a time\ntext\n")


def test_vtt_follows_the_webvtt_layout():
    import io

    from atc_whisper.transcribe.formats import TranscriptWriter, vtt_document

    segments = [_segment(), _segment(start_s=3661.5, end_s=3663.0, text="roger", low_confidence=True,
                                     reasons=["low_logprob"]), _segment(text="")]
    document = vtt_document(segments)
    blocks = document.split("\n\n")
    assert blocks[0] == "WEBVTT"  # the header, then one blank line
    assert blocks[1] == "00:01.250 --> 00:04.500\nspeedbird one two three climb"
    assert blocks[2].startswith("01:01:01.500 --> 01:01:03.000\nroger") and "LOW CONFIDENCE" in blocks[2]
    assert len([b for b in blocks if "-->" in b]) == 2  # the empty segment has no cue
    buffer = io.StringIO()
    writer = TranscriptWriter(buffer, "vtt")
    for segment in segments:
        writer.write(segment)
    assert buffer.getvalue() == ""  # held until close, like SRT
    writer.close()
    assert buffer.getvalue() == document


@pytest.mark.parametrize("fmt", ["jsonl", "json", "text"])
def test_writers_stream_and_parse_back(fmt):
    import io

    from atc_whisper.transcribe.formats import TranscriptWriter

    segments = [_segment(), _segment(file="b.wav", text="", low_confidence=True, reasons=["no_speech"])]
    buffer = io.StringIO()
    writer = TranscriptWriter(buffer, fmt, show_file=True)
    writer.write(segments[0])
    streamed = buffer.getvalue()
    writer.write(segments[1])
    writer.close()
    if fmt == "json":
        assert streamed == ""  # one document: written at close
        rows = json.loads(buffer.getvalue())
    elif fmt == "jsonl":
        assert streamed.count("\n") == 1  # streamed line by line
        rows = [json.loads(line) for line in buffer.getvalue().splitlines()]
    else:
        lines = buffer.getvalue().splitlines()
        assert lines[0].startswith("a.wav [00:00:01.250 -> 00:00:04.500] speedbird")
        assert "(no speech)" in lines[1] and "LOW CONFIDENCE: no_speech" in lines[1]
        return
    assert [r["file"] for r in rows] == ["a.wav", "b.wav"]
    assert rows[0]["start"] == 1.25 and rows[0]["end"] == 4.5 and rows[1]["low_confidence"] is True


# -- through the real CLI --------------------------------------------------------------------


def _cli(run_cli, workspace, *args):
    return run_cli("transcribe", "-w", str(workspace.root), "--set", "model.threads=1", *args)


def test_cli_jsonl_with_callsign_list(run_cli, session_workspace, tiny_en, atc_wav, tmp_path):
    callsigns = tmp_path / "on_frequency.txt"
    callsigns.write_text("# aircraft on frequency\nBAW123\nDLH456\nRYR2AB\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = _cli(run_cli, session_workspace, str(atc_wav), "--model", str(tiny_en.hf_dir), "--format", "jsonl",
                  "--callsigns", str(callsigns), "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # everything went to the file
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 1
    row = rows[0]
    for key in ("file", "start", "end", "text", "avg_logprob", "no_speech_prob", "compression_ratio",
                "low_confidence", "callsign", "commands"):
        assert key in row
    assert row["callsign"] == "speedbird one two three"
    assert any(c["type"] == "climb" for c in row["commands"])
    assert "Transcribed 1 file(s)" in result.stderr


def test_cli_text_flags_low_confidence_and_srt_per_file(run_cli, session_workspace, tiny_en, atc_wav, tmp_path):
    from atc_whisper.audio.io import load_audio, write_wav

    clean = load_audio(atc_wav)
    rng = np.random.default_rng(11)
    noisy_path = write_wav(tmp_path / "noisy.wav",
                           np.clip(clean + rng.standard_normal(len(clean)).astype(np.float32) * 0.3, -1, 1))
    # Speech drowned in noise (about 0 dB SNR): the fixed windows of --segmentation window send it to the
    # model, which flags its guess; by default the voice detector hears no transmission in it at all.
    result = _cli(run_cli, session_workspace, str(atc_wav), str(noisy_path), "--model", str(tiny_en.hf_dir),
                  "--segmentation", "window")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(atc_wav))
    assert "LOW CONFIDENCE" in lines[1]
    result = _cli(run_cli, session_workspace, str(atc_wav), str(noisy_path), "--model", str(tiny_en.hf_dir))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{atc_wav} [") and "ATC: " in lines[0]
    assert "1 transmission(s)" in result.stderr

    srt_dir = tmp_path / "subs"
    result = _cli(run_cli, session_workspace, str(atc_wav), str(noisy_path), "--model", str(tiny_en.hf_dir),
                  "--format", "srt", "--output", str(srt_dir), "--engine", "hf")
    assert result.returncode == 0, result.stderr
    cues = parse_srt((srt_dir / f"{atc_wav.stem}.srt").read_text(encoding="utf-8"))
    assert len(cues) == 1 and {"climb", "heading"} <= _words(cues[0][2])
    assert (srt_dir / "noisy.srt").exists()


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, atc_wav) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    text = folder / "notes.wav"
    text.write_text("this is not audio at all\n" * 20, encoding="utf-8")
    truncated = folder / "truncated.wav"
    truncated.write_bytes(atc_wav.read_bytes()[:2000])
    empty = folder / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), SR, subtype="PCM_16")
    silent = folder / "silent.wav"
    sf.write(silent, np.zeros(3 * SR, dtype=np.float32), SR, subtype="PCM_16")
    (folder / "a_folder").mkdir()
    return {"missing": folder / "nope.wav", "directory": folder / "a_folder", "not_audio": text,
            "truncated": truncated, "empty": empty, "silent": silent}


@pytest.mark.parametrize("kind", ["missing", "not_audio", "truncated", "empty", "silent"])
def test_cli_bad_audio_fails_fast_with_one_error_line(run_cli, session_workspace, bad_inputs, atc_wav, tmp_path, kind):
    bad = bad_inputs[kind]
    out = tmp_path / "out.txt"
    # A good file first: nothing may be transcribed or written when any input is bad.
    result = _cli(run_cli, session_workspace, str(atc_wav), str(bad), "--output", str(out), "--model", "no/such-model")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and str(bad) in error_lines[0], result.stderr
    assert "no/such-model" not in result.stderr  # inputs are checked before the model is resolved
    assert result.stdout == "" and not out.exists()


def test_cli_folder_without_audio_fails_before_the_model(run_cli, session_workspace, bad_inputs, tmp_path):
    # A folder is a batch input (tests/transcribe/test_jobs.py); one holding no audio is an error, found first.
    folder = bad_inputs["directory"]
    out = tmp_path / "out"
    result = _cli(run_cli, session_workspace, str(folder), "--output", str(out), "--model", "no/such-model")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and str(folder) in error_lines[0] and "no audio files" in error_lines[0]
    assert "no/such-model" not in result.stderr and not out.exists()


def test_cli_unknown_model_and_bad_options(run_cli, session_workspace, atc_wav, tmp_path):
    result = _cli(run_cli, session_workspace, str(atc_wav), "--model", "no/such-model", "--offline")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no/such-model" in result.stderr and "Error:" in result.stderr

    missing_list = tmp_path / "callsigns.txt"
    result = _cli(run_cli, session_workspace, str(atc_wav), "--callsigns", str(missing_list))
    assert result.returncode == 1 and "Traceback" not in result.stderr and str(missing_list) in result.stderr

    result = _cli(run_cli, session_workspace, str(atc_wav), str(atc_wav), "--format", "srt")
    assert result.returncode == 1 and "Error:" in result.stderr and "--output" in result.stderr


def test_models_with_a_changed_encoder_window_avoid_ct2(tmp_path, settings):
    from atc_whisper.errors import ModelError
    from atc_whisper.transcribe.engines import choose_engine

    stock, short = tmp_path / "stock", tmp_path / "short"
    stock.mkdir()
    short.mkdir()
    (stock / "config.json").write_text(json.dumps({"model_type": "whisper", "max_source_positions": 1500}))
    (short / "config.json").write_text(json.dumps({"model_type": "whisper", "atc_whisper_encoder_frames": 1000}))
    assert choose_engine("auto", settings, stock) == "ct2"
    assert choose_engine("auto", settings, short) == "hf"
    with pytest.raises(ModelError, match="--engine hf"):
        choose_engine("ct2", settings, short)
    with pytest.raises(ModelError, match="auto, ct2, hf"):
        choose_engine("onnx", settings, stock)

"""The encoder and its padding policy on a tiny Whisper: equal to openai-whisper on 30-s windows,
and on true length an utterance's states, logits and hypothesis do not depend on its batch mates."""

import pytest
import torch
import whisper
from conftest import audio_batch, padded

from espnet_cs.blocks import equal_length_groups
from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.encoder import CSWhisperEncoder
from espnet_cs.tokenizer import CSTokenizer

SECONDS = (0.7, 2.3, 1.0, 2.9, 0.4)  # widths 1, 3, 1, 3, 1 s


@pytest.fixture(scope="module")
def true_length(tiny_whisper_path):
    spec = str(tiny_whisper_path)
    encoder = CSWhisperEncoder(whisper_model=spec, pad_to_30s=False, soft_prompts={"length": 3, "deep": True})
    decoder = CSWhisperDecoder(51865, encoder.output_size(), whisper_model=spec, soft_prompts={"length": 2})
    return encoder, decoder


def test_encoder_equals_whisper_with_30s_padding(tiny_whisper_path):
    encoder = CSWhisperEncoder(whisper_model=str(tiny_whisper_path)).eval()
    reference = whisper.load_model(str(tiny_whisper_path), device="cpu").eval()
    audios = audio_batch()
    states, lens, _ = encoder(*padded(audios))
    mels = [whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(a))) for a in audios]
    assert states.shape == (2, 1500, 64) and lens.tolist() == [1500, 1500]
    torch.testing.assert_close(states, reference.encoder(torch.stack(mels)))


def test_equal_length_groups_restore_batch_order():
    lengths = torch.tensor([5, 3, 5, 1, 3])
    groups = equal_length_groups(lengths)
    assert [g.tolist() for g in groups] == [[3], [1, 4], [0, 2]]
    assert torch.equal(torch.cat(groups)[torch.argsort(torch.cat(groups))], torch.arange(5))


@pytest.mark.parametrize("training", [True, False])
def test_states_and_logits_do_not_depend_on_batch_mates(true_length, training):
    """Each utterance is padded to its next whole second; the rest of the batch changes nothing."""
    encoder, decoder = true_length
    encoder.train(training), decoder.train(training)
    audios = audio_batch(SECONDS)
    tok = CSTokenizer()
    tokens = torch.tensor([[*tok.sot_sequence, *tok.encode("你好 hello 世界")]] * len(audios))
    states, lengths, _ = encoder(*padded(audios))
    logits, _ = decoder(states, lengths, tokens, None)
    assert lengths.tolist() == [3 + 50 * w for w in (1, 3, 1, 3, 1)] and states.shape == (5, 153, 64)
    for i, audio in enumerate(audios):
        alone, alone_lengths, _ = encoder(*padded([audio]))
        assert alone.shape[1] == alone_lengths[0] == lengths[i]
        torch.testing.assert_close(states[i, : lengths[i]], alone[0], atol=1e-5, rtol=1e-5)
        assert not states[i, lengths[i] :].any()  # zero-padded past its own width
        torch.testing.assert_close(
            logits[i], decoder(alone, alone_lengths, tokens[:1], None)[0][0], atol=1e-4, rtol=1e-4
        )
    encoder.eval(), decoder.eval()


def test_other_padding_changes_the_states(true_length):
    """The premise of the policy, so the tests above can fail: the same audio padded further gives
    other states, and decoding states padded to the batch's widest gives other logits."""
    encoder, decoder = true_length
    audio = torch.from_numpy(audio_batch((0.7,))[0])[None]
    length = torch.tensor([audio.size(1)])
    one_second = encoder.encode_mel(encoder.log_mel(audio, length, 16000))
    three_seconds = encoder.encode_mel(encoder.log_mel(audio, length, 48000))
    assert not torch.allclose(one_second, three_seconds[:, : one_second.size(1)], atol=1e-4)
    tok = CSTokenizer()
    tokens = torch.tensor([[*tok.sot_sequence, *tok.encode("你好")]])
    padded_states = torch.nn.functional.pad(one_second, (0, 0, 0, 100))
    own, _ = decoder(padded_states, torch.tensor([one_second.size(1)]), tokens, None)
    all_frames, _ = decoder(padded_states, torch.tensor([padded_states.size(1)]), tokens, None)
    assert not torch.allclose(own, all_frames, atol=1e-4)


def test_deep_prompt_outputs_that_go_unread_are_not_computed(tiny_whisper_path, monkeypatch):
    """Deep prompts replace the prompt positions at every next block, so blocks but the last run
    their feed-forward on the frames only; states and gradients equal computing every position."""
    torch.manual_seed(0)
    encoder = CSWhisperEncoder(
        whisper_model=str(tiny_whisper_path),
        pad_to_30s=False,
        soft_prompts={"length": 3, "deep": True},
        adapters={"bottleneck": 4},
    ).train()
    for p in encoder.adapters.parameters():  # as after training: adapters change the outputs
        torch.nn.init.normal_(p, std=0.1)
    mel = encoder.log_mel(*padded(audio_batch((0.7, 0.9))), 16000)  # 50 frames
    mlp_rows = []
    for block in encoder.encoders.blocks:
        block.mlp.register_forward_hook(lambda module, args, output: mlp_rows.append(args[0].size(1)))

    def states_and_gradients():
        encoder.zero_grad()
        states = encoder.encode_mel(mel)
        states.pow(2).sum().backward()
        return states.detach(), [p.grad.clone() for p in encoder.parameters() if p.requires_grad]

    states, gradients = states_and_gradients()
    assert mlp_rows == [50, 3 + 50] and states.shape == (2, 3 + 50, 64)
    mlp_rows.clear()
    monkeypatch.setattr(encoder.soft_prompts, "unread_outputs", lambda *args, **kwargs: 0)
    every_position, every_gradient = states_and_gradients()
    assert mlp_rows == [3 + 50, 3 + 50]
    torch.testing.assert_close(states, every_position, atol=1e-5, rtol=1e-5)
    for gradient, expected in zip(gradients, every_gradient, strict=True):
        torch.testing.assert_close(gradient, expected, atol=1e-5, rtol=1e-4)


def test_audio_over_30s_is_an_error(true_length):
    with pytest.raises(ValueError, match="30-s"):
        true_length[0](*padded(audio_batch((30.5,))))

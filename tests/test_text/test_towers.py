"""TextTower (ovdense/text/towers.py): native open_clip towers equal open_clip's zero-shot
classifier, the iCAR RoBERTa tower's layout and exact computation, checkpoint errors, the text
state of converted and full CLIP files, padding trimmed per batch, and prompt tokens made once
for joint training."""
import open_clip
import pytest
import torch
import torch.nn.functional as F

from ovdense.testing import tiny_clip_config, tiny_icar_text_checkpoint, tiny_roberta_dir
from ovdense.text import (ClassEntry, PromptStyle, TextTower, Vocabulary,
                          build_class_embeddings, load_templates, load_vocabulary)
from ovdense.utils import OvdenseFileError


def _reference_classifier(model, tokenizer, names, templates):
    return open_clip.build_zero_shot_classifier(
        model, tokenizer, names, templates, num_classes_per_batch=10, device='cpu').T


def _plain_vocabulary(names):
    return Vocabulary(tuple(ClassEntry(n) for n in names))


def test_vit_b32_matches_open_clip_zero_shot_classifier(tmp_path):
    # ViT-B-32 x 80 templates costs ~6 GFLOP per prompt on CPU: 3 COCO classes keep the test
    # within budget; the tiny-config test below covers all 80 classes with the same code path.
    torch.manual_seed(0)
    model = open_clip.create_model('ViT-B-32', pretrained=None).eval()
    checkpoint = tmp_path / 'vit_b32.pt'
    torch.save(model.state_dict(), checkpoint)
    names = list(load_vocabulary('coco').names[:3])
    templates = load_templates('imagenet')
    assert len(templates) == 80
    reference = _reference_classifier(model, open_clip.get_tokenizer('ViT-B-32'), names,
                                      templates)
    tower = TextTower('ViT-B-32', checkpoint=str(checkpoint))
    ours = build_class_embeddings(tower, _plain_vocabulary(names),
                                  PromptStyle.build('imagenet', use_descriptions=False,
                                                    use_synonyms=False), batch_size=100)
    assert ours.shape == reference.shape
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_tiny_tower_matches_open_clip_on_all_coco_classes(tmp_path):
    config = tiny_clip_config(str(tmp_path), name='ovdense-test-tiny-clip')
    open_clip.add_model_config(config)
    torch.manual_seed(1)
    model = open_clip.create_model('ovdense-test-tiny-clip', pretrained=None).eval()
    checkpoint = tmp_path / 'tiny.pt'
    torch.save(model.state_dict(), checkpoint)
    names = list(load_vocabulary('coco').names)
    templates = load_templates('imagenet')
    reference = _reference_classifier(model, open_clip.get_tokenizer('ovdense-test-tiny-clip'),
                                      names, templates)
    ours = build_class_embeddings(TextTower(config, checkpoint=str(checkpoint)),
                                  _plain_vocabulary(names),
                                  PromptStyle.build('imagenet', use_descriptions=False,
                                                    use_synonyms=False))
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_icar_text_tower_layout_and_exact_computation(tmp_path):
    hf_dir = tiny_roberta_dir(str(tmp_path / 'roberta'))
    checkpoint = str(tmp_path / 'icar.pth')
    state = tiny_icar_text_checkpoint(checkpoint, hf_dir)
    tower = TextTower('icar-roberta-base', checkpoint=checkpoint, hf_dir=hf_dir).eval()
    loaded = tower.encoder.state_dict()
    expected = {k[len('sentence_model.backbone.'):]: v for k, v in state.items()
                if k.startswith('sentence_model.backbone.')}
    assert set(loaded) == {'transformer.' + k for k in expected} | {'proj.weight'}
    for key, value in expected.items():
        assert torch.equal(loaded['transformer.' + key], value), key

    from transformers import AutoTokenizer, RobertaConfig, RobertaModel
    texts = ['a red circle', 'a blue star on a background, a shape']
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    batch = tokenizer(texts, padding='max_length', truncation=True, max_length=16,
                      return_tensors='pt')
    roberta = RobertaModel(RobertaConfig.from_pretrained(hf_dir), add_pooling_layer=False)
    roberta.load_state_dict(expected)
    roberta.eval()
    with torch.no_grad():
        hidden = roberta(input_ids=batch['input_ids'],
                         attention_mask=batch['attention_mask']).last_hidden_state
        mask = batch['attention_mask'].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        direct = F.normalize(pooled @ state['sentence_model.projector.weight'].T, dim=-1)
    ours = tower.encode(texts)
    assert ours.shape == (2, 256)
    torch.testing.assert_close(ours, direct, atol=1e-6, rtol=0)


def test_hf_tower_needs_local_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match='hf_dir'):
        TextTower('icar-roberta-base', hf_dir=str(tmp_path))


def test_checkpoint_of_other_architecture_is_named(tmp_path):
    small = tiny_clip_config(str(tmp_path / 'a'), width=32)
    wide = tiny_clip_config(str(tmp_path / 'b'), width=64)
    path = tmp_path / 'wide.pt'
    torch.save(TextTower(wide).encoder.state_dict(), path)
    with pytest.raises(OvdenseFileError, match="wide.pt.*has shape"):
        TextTower(small, checkpoint=str(path))


def test_truncated_and_unknown(tmp_path):
    config = tiny_clip_config(str(tmp_path))
    path = tmp_path / 'tower.pt'
    torch.save(TextTower(config).encoder.state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(OvdenseFileError, match='truncated'):
        TextTower(config, checkpoint=str(path))
    with pytest.raises(ValueError, match='unknown open_clip model'):
        TextTower('no-such-model')


def test_text_state_from_converted_and_full_clip_files():
    from ovdense.text.towers import extract_text_state
    tower_keys = {'token_embedding.weight': torch.zeros(1), 'ln_final.weight': torch.zeros(1)}
    converted = {'ovdense_format': 'ovdense-vl-checkpoint', 'backbone': {},
                 'text_tower': dict(tower_keys, logit_scale=torch.zeros(()))}
    assert set(extract_text_state(converted)) == set(tower_keys)
    full_clip = dict(tower_keys, **{'visual.conv1.weight': torch.zeros(1),
                                    'logit_scale': torch.zeros(())})
    assert set(extract_text_state({'state_dict': full_clip})) == set(tower_keys)
    custom = {'text.transformer.x': torch.zeros(1), 'visual.trunk.y': torch.zeros(1)}
    assert set(extract_text_state(custom)) == {'transformer.x'}


# -- padding trimmed per batch: the same embeddings as the full context ------------------------
_VARIED_PROMPTS = ['a cat.', 'a photo of a red circle on a blue background.', 'star',
                   'a blue star on a background, a shape', 'the green square, a shape',
                   'an aerosol can, a dispenser that holds a substance under pressure']


def _full_context_embeddings(tower, texts):
    """The reference: every prompt padded to the whole context, one batch."""
    with torch.no_grad():
        return F.normalize(tower.eval().encoder(tower.tokenize(texts)).float(), dim=-1)


def _encoded_lengths(tower):
    lengths = []
    tower.encoder.register_forward_pre_hook(lambda module, args: lengths.append(
        args[0].shape[1]))
    return lengths


def test_trimmed_batches_equal_full_context_native_and_hf(tmp_path):
    hf_dir = tiny_roberta_dir(str(tmp_path / 'roberta'))
    checkpoint = str(tmp_path / 'icar.pth')
    tiny_icar_text_checkpoint(checkpoint, hf_dir)
    config = tiny_clip_config(str(tmp_path), context_length=32)
    towers = {'native': TextTower(config), 'hf': TextTower('icar-roberta-base',
                                                            checkpoint=checkpoint,
                                                            hf_dir=hf_dir, context_length=32)}
    for name, tower in towers.items():
        reference = _full_context_embeddings(tower, _VARIED_PROMPTS)
        lengths = _encoded_lengths(tower)
        trimmed = tower.encode(_VARIED_PROMPTS, batch_size=2)
        torch.testing.assert_close(trimmed, reference, atol=1e-6, rtol=0, msg=name)
        assert len(lengths) == 3 and max(lengths) < 32, (name, lengths)  # trimmed, by length
        assert lengths == sorted(lengths), (name, lengths)
        # differentiable, in the input order, through the same trimmed path
        tower.train()
        grad_path = tower.encode_tokens(tower.tokenize(_VARIED_PROMPTS[::-1]), batch_size=4)
        assert grad_path.requires_grad
        if name == 'native':  # no dropout: the training forward is deterministic
            torch.testing.assert_close(grad_path.detach(), reference.flip(0), atol=1e-6,
                                       rtol=0)


def test_towers_whose_output_reads_padding_are_not_trimmed(tmp_path):
    from open_clip.hf_model import MaxPooler
    hf_dir = tiny_roberta_dir(str(tmp_path / 'roberta'))
    max_pooled = TextTower('icar-roberta-base', hf_dir=hf_dir, context_length=32)
    max_pooled.encoder.pooler = MaxPooler()  # reads padding positions
    assert max_pooled._padding_id() is None
    last_pooled = TextTower(tiny_clip_config(str(tmp_path), context_length=32))
    last_pooled.encoder.pool_type = 'last'  # the last context position
    lengths = _encoded_lengths(last_pooled)
    last_pooled.encode(_VARIED_PROMPTS, batch_size=4)
    assert lengths == [32, 32]


def test_joint_training_samples_prompts_from_tokens_made_once(tmp_path, monkeypatch):
    import random

    from ovdense.text import TextCosineClassifier
    from ovdense.text.embeddings import PromptTokens
    vocabulary = 'red circle,blue star,green square,bow_(weapon)'
    head = TextCosineClassifier(in_features=32, vocabulary=vocabulary,
                                text_tower={'model': tiny_clip_config(str(tmp_path))},
                                prompts=dict(templates='vild'), train_text_tower=True).train()
    tower = head.class_embeddings.tower
    calls = []
    original = TextTower.tokenize
    monkeypatch.setattr(TextTower, 'tokenize',
                        lambda self, texts: calls.append(len(texts)) or original(self, texts))
    for _ in range(3):
        head.class_embeddings()
    assert len(calls) == 1  # all prompts, once; not once per step
    # the same draws and prompts as PromptStyle.sample_prompt
    tokens = PromptTokens(tower, head.vocabulary, head.class_embeddings.prompt_style)
    rng = random.Random(7)
    expected = tower.tokenize([head.class_embeddings.prompt_style.sample_prompt(e, rng)
                               for e in head.vocabulary])
    assert torch.equal(tokens.sample(rng=random.Random(7)), expected)
    head.set_vocabulary('cat,dog')
    head.class_embeddings()
    assert len(calls) == 4  # rebuilt for the new vocabulary (tokens above: calls 2 and 3)

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

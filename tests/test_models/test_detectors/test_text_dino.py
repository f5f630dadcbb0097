"""TextDINO: DINO's denoising label queries made from the class embeddings (no K-way label
table), noisy labels drawn among the trained classes, the class count following a vocabulary
swap; training and prediction on a tiny stock DINO-4scale config."""
import pytest
import torch

import ovdense  # noqa: F401
from ovdense.apis import set_model_vocabulary
from ovdense.models.detectors import ClassEmbeddingQueries, TextCdnQueryGenerator
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.configs import installed_config
from ovdense.utils.cli import ConfigError

VOCAB = 'cat,dog,yak,owl'


def _tiny_dino(tmp_path, **head):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    model = installed_config('mmdet', 'dino/dino-4scale_r50_8xb2-12e_coco.py').model
    model.backbone.update(depth=18, init_cfg=None)
    model.neck.in_channels = [128, 256, 512]
    model.encoder.num_layers, model.decoder.num_layers = 1, 2
    model.num_queries, model.test_cfg.max_per_img = 10, 10
    model.bbox_head.update(num_classes=None, **head)
    shared = dict(type='WithClassEmbeddings', base_type='TextDINO',
                  class_embeddings=dict(type='TrainedTowerClassEmbeddings', vocabulary=VOCAB,
                                        novel_classes=['owl'],
                                        text_tower=tiny_text_tower_cfg(str(tmp_path))))
    torch.manual_seed(0)
    built = MODELS.build(dict(model, **shared))
    built.init_weights()
    return built


def _batch(model, training, num_classes=3):
    from mmdet.testing import demo_mm_inputs
    inputs = demo_mm_inputs(batch_size=2, image_shapes=[(3, 64, 64)] * 2, num_items=[3, 3],
                            num_classes=num_classes)
    return model.data_preprocessor(inputs, training)


def test_label_queries_are_projected_class_embeddings_and_noise_is_trained_classes(tmp_path):
    model = _tiny_dino(tmp_path, type='TextDINOHead')
    generator = model.dn_query_generator
    assert isinstance(generator, TextCdnQueryGenerator)
    assert isinstance(generator.label_embedding, ClassEmbeddingQueries)
    assert not [n for n, m in model.named_modules() if isinstance(m, torch.nn.Embedding)
                and m.num_embeddings == 4]  # no per-class table left
    # the component is read, not owned: one copy of the tower in the state dict
    assert not [k for k in model.state_dict() if k.startswith('dn_query_generator.') and
                'tower' in k]
    model.eval()
    labels = torch.tensor([0, 2, 1])
    with torch.no_grad():
        expected = generator.label_embedding.projection(model.class_embeddings('cpu')[labels])
        torch.testing.assert_close(generator.label_embedding(labels), expected)
    model.train()
    seen = []
    generator.label_embedding.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    generator.label_noise_scale = 2.0  # every label replaced by a random one
    generator.generate_dn_label_query(torch.zeros(500, dtype=torch.long), num_groups=1)
    drawn = set(seen[0].tolist())
    assert drawn == {0, 1, 2}  # 'owl' (novel) is never a query


def test_trains_predicts_and_follows_a_vocabulary_swap(tmp_path):
    model = _tiny_dino(tmp_path, type='TextDINOHead')
    model.train()
    loss, _ = model.parse_losses(model(**_batch(model, True), mode='loss'))
    assert torch.isfinite(loss)
    loss.backward()
    assert model.dn_query_generator.label_embedding.projection.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.class_embeddings.parameters())
    set_model_vocabulary(model, 'a,b,c,d,e,f')
    assert model.dn_query_generator.num_classes == model.bbox_head.num_classes == 6
    model.class_embeddings.novel_classes = None  # the swapped list has no 'owl'
    loss, _ = model.parse_losses(model(**_batch(model, True, num_classes=6), mode='loss'))
    assert torch.isfinite(loss)
    model.eval()
    with torch.no_grad():
        results = model(**_batch(model, False, num_classes=6), mode='predict')
    assert int(results[0].pred_instances.labels.max()) < 6


@pytest.mark.parametrize('detector', ['DINO', 'TextDINO'])
def test_a_head_owned_trained_tower_trains_step_after_step(tmp_path, detector):
    """The head's own jointly trained tower: DINO's encoder proposals are scored before
    decoder layer 0 (the classifier that starts a step); each step must still encode afresh
    (reusing the last step's encoding backpropagated through a freed graph)."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    model = installed_config('mmdet', 'dino/dino-4scale_r50_8xb2-12e_coco.py').model
    model.backbone.update(depth=18, init_cfg=None)
    model.neck.in_channels = [128, 256, 512]
    model.encoder.num_layers, model.decoder.num_layers = 1, 2
    model.num_queries = 10
    model.bbox_head.update(type='TextDINOHead', num_classes=4, text_classifier=dict(
        vocabulary=VOCAB, train_text_tower=True, text_tower=tiny_text_tower_cfg(str(tmp_path))))
    torch.manual_seed(0)
    built = MODELS.build(dict(model, type=detector))
    built.init_weights()
    optimizer = torch.optim.SGD(built.parameters(), lr=1e-3)
    built.train()
    for _ in range(3):
        loss, _ = built.parse_losses(built(**_batch(built, True), mode='loss'))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)


def test_needs_a_text_head():
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    model = installed_config('mmdet', 'dino/dino-4scale_r50_8xb2-12e_coco.py').model
    model.backbone.update(depth=18, init_cfg=None)
    model.neck.in_channels = [128, 256, 512]
    with pytest.raises(ConfigError, match='TextDINO: bbox_head DINOHead has no text classifier'):
        MODELS.build(dict(model, type='TextDINO'))

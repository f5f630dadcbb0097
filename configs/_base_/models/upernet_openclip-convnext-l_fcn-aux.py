# UperNet + FCN auxiliary head on an open_clip ConvNeXt-L image tower (the CLIP model FC-CLIP
# builds on). Both heads score against ONE class-embedding component: the same CLIP model's
# text tower, frozen (embeddings computed once and cached on disk). A config that uses this
# model states its class list once: model.class_embeddings.vocabulary.
_base_ = 'mmseg::_base_/models/upernet_swin.py'

# ---- set these (or --cfg-options) ----
open_clip_model = 'convnext_large_d_320'  # open_clip config name (or a JSON config path)
# open_clip checkpoint of that model, e.g. laion2b_s29b_b131k_ft_soup (open_clip_pytorch_model.bin)
open_clip_checkpoint = 'checkpoints/open_clip_convnext_large_d_320.bin'
# ---------------------------------------

model = dict(
    type='WithClassEmbeddings', base_type='EncoderDecoder',
    # open_clip's image normalisation (CLIP mean / std, RGB)
    data_preprocessor=dict(size=(512, 512), mean=[122.771, 116.746, 104.094],
                           std=[68.501, 66.632, 70.323]),
    class_embeddings=dict(
        type='FrozenTowerClassEmbeddings', vocabulary='ade20k_150',
        text_tower=dict(model=open_clip_model, checkpoint=open_clip_checkpoint),
        prompts=dict(templates='vild', use_descriptions=False)),
    backbone=dict(
        _delete_=True, type='OpenCLIPVisionBackbone', model_name=open_clip_model,
        checkpoint=open_clip_checkpoint, out_indices=(0, 1, 2, 3), frozen=False),
    # no num_classes: the heads take the class count of model.class_embeddings
    decode_head=dict(type='TextUPerHead', num_classes=None, in_channels=[192, 384, 768, 1536],
                     text_classifier=dict(scale=20.0)),
    auxiliary_head=dict(type='TextFCNHead', num_classes=None, in_channels=768,
                        text_classifier=dict(scale=20.0)))

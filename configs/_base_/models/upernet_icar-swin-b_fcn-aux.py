# UperNet + FCN auxiliary head on the iCAR Swin-B image tower. Both heads' final 1x1
# classification conv is the text cosine classifier, and both score against ONE class-embedding
# component: iCAR's RoBERTa text tower, trained jointly (one random prompt per class per step).
# A config that uses this model states its class list once: model.class_embeddings.vocabulary.
_base_ = 'mmseg::_base_/models/upernet_swin.py'

# ---- set these (or --cfg-options) ----
icar_checkpoint = 'checkpoints/icar_swin-b.pth'  # iCAR file: visual_model.* + sentence_model.*
roberta_dir = 'checkpoints/roberta-base'         # local copy of roberta-base config + tokenizer
# ---------------------------------------

model = dict(
    type='WithClassEmbeddings', base_type='EncoderDecoder',
    data_preprocessor=dict(size=(512, 512)),
    class_embeddings=dict(
        type='TrainedTowerClassEmbeddings', vocabulary='ade20k_150',
        text_tower=dict(model='icar-roberta-base', checkpoint=icar_checkpoint,
                        hf_dir=roberta_dir),
        prompts=dict(templates='vild', use_descriptions=False)),
    backbone=dict(
        _delete_=True, type='ICARSwin', arch='base', checkpoint=icar_checkpoint,
        text_embed_dims=None, proj_bias=False,  # the heads project to the text space
        drop_path_rate=0.3, out_indices=(0, 1, 2, 3), convert_weights=False),
    # no num_classes: the heads take the class count of model.class_embeddings
    decode_head=dict(type='TextUPerHead', num_classes=None, in_channels=[128, 256, 512, 1024],
                     text_classifier=dict(scale=20.0)),
    auxiliary_head=dict(type='TextFCNHead', num_classes=None, in_channels=512,
                        text_classifier=dict(scale=20.0)))

# UperNet (+ FCN auxiliary head) on an open_clip ConvNeXt-L image tower (the CLIP model FC-CLIP
# builds on), fine-tuned on ADE20K-150, 160k iterations at 512x512, with the text cosine
# classifier in both heads. The class embeddings come from the same CLIP model's text tower,
# kept frozen (embeddings computed once and cached); the image tower is fine-tuned at 0.1x the
# head learning rate so it stays close to the CLIP embedding space.
_base_ = './upernet_icar-swin-b_fcn-aux_160k_ade20k-512x512.py'

# ---- set these ----
open_clip_model = 'convnext_large_d_320'  # open_clip config name (or a JSON config path)
# open_clip checkpoint of that model, e.g. laion2b_s29b_b131k_ft_soup (open_clip_pytorch_model.bin)
open_clip_checkpoint = 'checkpoints/open_clip_convnext_large_d_320.bin'
data_root = 'data/ade/ADEChallengeData2016/'
# -------------------
vocabulary = 'ade20k_150'
num_classes = 150

text_classifier = dict(
    _delete_=True,
    vocabulary=vocabulary,
    text_tower=dict(model=open_clip_model, checkpoint=open_clip_checkpoint),
    prompts=dict(templates='vild', use_descriptions=False),
    train_text_tower=False,
    scale=20.0)

model = dict(
    # open_clip's image normalisation (CLIP mean / std, RGB)
    data_preprocessor=dict(mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323]),
    backbone=dict(
        _delete_=True, type='OpenCLIPVisionBackbone', model_name=open_clip_model,
        checkpoint=open_clip_checkpoint, out_indices=(0, 1, 2, 3), frozen=False),
    decode_head=dict(in_channels=[192, 384, 768, 1536], num_classes=num_classes,
                     text_classifier=text_classifier),
    auxiliary_head=dict(in_channels=768, num_classes=num_classes,
                        text_classifier=text_classifier))

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True, type='AmpOptimWrapper', loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1),
                                    'norm': dict(decay_mult=0.)}))

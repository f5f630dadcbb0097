# UperNet (+ FCN auxiliary head), iCAR Swin-B image tower, fine-tuned on ADE20K-150 for 160k
# iterations at 512x512 (batch 16 = 8 GPUs x 2), the mmseg Swin-B recipe. The final 1x1
# classification conv of both heads is the text cosine classifier: class weights are the
# iCAR text tower's embeddings of prompts for the 150 class names. The decode head trains the
# text tower jointly (one random prompt per class per step); the auxiliary head uses the
# frozen iCAR tower (cached embeddings), so only one 125M-parameter tower is trained.
_base_ = 'mmseg::swin/swin-base-patch4-window7-in22k-pre_upernet_8xb2-160k_ade20k-512x512.py'

# ---- set these ----
icar_checkpoint = 'checkpoints/icar_swin-b.pth'  # iCAR file: visual_model.* + sentence_model.*
roberta_dir = 'checkpoints/roberta-base'         # local copy of roberta-base config + tokenizer
data_root = 'data/ade/ADEChallengeData2016/'
# -------------------
vocabulary = 'ade20k_150'
num_classes = 150

text_classifier = dict(
    vocabulary=vocabulary,
    text_tower=dict(model='icar-roberta-base', checkpoint=icar_checkpoint, hf_dir=roberta_dir),
    prompts=dict(templates='vild', use_descriptions=False),
    train_text_tower=True,
    scale=20.0)

model = dict(
    backbone=dict(
        _delete_=True, type='ICARSwin', arch='base', checkpoint=icar_checkpoint,
        text_embed_dims=None, proj_bias=False,  # the heads project to the text space
        drop_path_rate=0.3, out_indices=(0, 1, 2, 3), convert_weights=False),
    decode_head=dict(
        type='TextUPerHead', in_channels=[128, 256, 512, 1024], num_classes=num_classes,
        text_classifier=text_classifier),
    auxiliary_head=dict(
        type='TextFCNHead', in_channels=512, num_classes=num_classes,
        text_classifier=dict(text_classifier, train_text_tower=False)))

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={
        'absolute_pos_embed': dict(decay_mult=0.),
        'relative_position_bias_table': dict(decay_mult=0.),
        'norm': dict(decay_mult=0.),
        'text_tower': dict(lr_mult=0.1)}))
# checks the classes of model and data agree; draws pictures under --vocab / --show-dir
custom_hooks = [dict(type='SegVocabularyCheckHook')]
default_hooks = dict(visualization=dict(type='OVSegVisualizationHook'))
custom_imports = dict(imports=['ovdense'], allow_failed_imports=False)

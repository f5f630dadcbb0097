# Mask2Former, iCAR Swin-B image tower, fine-tuned on ADE20K-150 for 160k iterations at
# 640x640 (batch 16 = 8 GPUs x 2), mmseg's Swin-B Mask2Former recipe. The query classifier
# (cls_embed, K + 1 columns with "no object") is the text cosine classifier with a learned
# no-object embedding; all nine decoder layers score against ONE jointly trained iCAR text
# tower (0.1x learning rate, like the backbone). Not run here (no GPU). To test this model on
# another class list of the same images: tools/test.py ... --vocab <vocabulary>.
_base_ = 'mmseg::mask2former/mask2former_swin-b-in1k-384x384-pre_8xb2-160k_ade20k-640x640.py'

# ---- set these ----
icar_checkpoint = 'checkpoints/icar_swin-b.pth'  # iCAR file: visual_model.* + sentence_model.*
roberta_dir = 'checkpoints/roberta-base'         # local copy of roberta-base config + tokenizer
data_root = 'data/ade/ADEChallengeData2016/'
# -------------------

model = dict(
    type='WithClassEmbeddings', base_type='EncoderDecoder',
    class_embeddings=dict(
        type='TrainedTowerClassEmbeddings', vocabulary='ade20k_150',  # = ADE20KDataset's
        text_tower=dict(model='icar-roberta-base', checkpoint=icar_checkpoint,
                        hf_dir=roberta_dir),
        prompts=dict(templates='vild', use_descriptions=False)),
    backbone=dict(
        _delete_=True, type='ICARSwin', arch='base', checkpoint=icar_checkpoint,
        text_embed_dims=None, proj_bias=False,  # the head projects to the text space
        drop_path_rate=0.3, out_indices=(0, 1, 2, 3), convert_weights=False),
    # class count and the loss's class weights: the vocabulary's
    decode_head=dict(type='TextMask2FormerHead', num_classes=None,
                     text_classifier=dict(scale=20.0)))

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'embeddings.tower': dict(lr_mult=0.1)}))
custom_hooks = [dict(type='SegVocabularyCheckHook')]
default_hooks = dict(visualization=dict(type='OVSegVisualizationHook'))
custom_imports = dict(imports=['mmdet.models', 'ovdense'], allow_failed_imports=False)

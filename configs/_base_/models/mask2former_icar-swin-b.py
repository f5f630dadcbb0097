# Mask2Former on the iCAR Swin-B image tower, mmseg's Swin-B Mask2Former model (100 queries,
# MSDeformAttn pixel decoder with 6 layers, 9 decoder layers, its losses and matcher). The query
# classifier (cls_embed, K + 1 columns with "no object") is the text cosine classifier with a
# learned no-object embedding; every decoder layer scores against ONE class-embedding
# component: iCAR's RoBERTa text tower, trained jointly. A config that uses this model states
# its class list once: model.class_embeddings.vocabulary.
# ---- set these (or --cfg-options) ----
icar_checkpoint = 'checkpoints/icar_swin-b.pth'  # iCAR file: visual_model.* + sentence_model.*
roberta_dir = 'checkpoints/roberta-base'         # local copy of roberta-base config + tokenizer
# ---------------------------------------
attention = dict(embed_dims=256, num_heads=8, attn_drop=0.0, proj_drop=0.0,
                 dropout_layer=None, batch_first=True)
model = dict(
    type='WithClassEmbeddings', base_type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(640, 640)),
    class_embeddings=dict(
        type='TrainedTowerClassEmbeddings', vocabulary='ade20k_150',
        text_tower=dict(model='icar-roberta-base', checkpoint=icar_checkpoint,
                        hf_dir=roberta_dir),
        prompts=dict(templates='vild', use_descriptions=False)),
    backbone=dict(
        type='ICARSwin', arch='base', checkpoint=icar_checkpoint,
        text_embed_dims=None, proj_bias=False,  # the head projects to the text space
        drop_path_rate=0.3, out_indices=(0, 1, 2, 3), convert_weights=False),
    # no num_classes: the class count and the loss's class weights follow the vocabulary
    decode_head=dict(
        type='TextMask2FormerHead', num_classes=None, text_classifier=dict(scale=20.0),
        in_channels=[128, 256, 512, 1024], strides=[4, 8, 16, 32], feat_channels=256,
        out_channels=256, num_queries=100, num_transformer_feat_level=3,
        align_corners=False,
        pixel_decoder=dict(
            type='mmdet.MSDeformAttnPixelDecoder', num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32), act_cfg=dict(type='ReLU'),
            encoder=dict(num_layers=6, layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=256, num_heads=8, num_levels=3, num_points=4,
                                   im2col_step=64, dropout=0.0, batch_first=True,
                                   norm_cfg=None, init_cfg=None),
                ffn_cfg=dict(embed_dims=256, feedforward_channels=1024, num_fcs=2,
                             ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True))),
                init_cfg=None),
            positional_encoding=dict(num_feats=128, normalize=True), init_cfg=None),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=128, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True, num_layers=9, init_cfg=None,
            layer_cfg=dict(
                self_attn_cfg=attention, cross_attn_cfg=attention,
                ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, num_fcs=2,
                             act_cfg=dict(type='ReLU', inplace=True), ffn_drop=0.0,
                             dropout_layer=None, add_identity=True))),
        # "1.0 per class, 0.1 for no object", whatever the vocabulary size
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                      reduction='mean', class_weight=[1.0] * 150 + [0.1]),
        loss_mask=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                       loss_weight=5.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True,
                       reduction='mean', naive_dice=True, eps=1.0, loss_weight=5.0),
        train_cfg=dict(
            num_points=12544, oversample_ratio=3.0, importance_sample_ratio=0.75,
            assigner=dict(type='mmdet.HungarianAssigner', match_costs=[
                dict(type='mmdet.ClassificationCost', weight=2.0),
                dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0)]),
            sampler=dict(type='mmdet.MaskPseudoSampler'))),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

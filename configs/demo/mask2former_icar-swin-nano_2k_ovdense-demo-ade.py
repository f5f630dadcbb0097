# Demo open-vocabulary semantic segmentation with Mask2Former on the synthetic ADE-format data
# of tools/make_demo_data.py: the UperNet demo's backbone, text tower, data, evaluator and
# schedule, with a CPU-sized Mask2Former head (TextMask2FormerHead: 20 queries, 3 decoder
# layers, every layer's query classifier scoring against the one jointly trained text tower).
# Background pixels (label 0) are ignored in training and testing (a mask classifier has its
# own "no object" column instead of a background class). The 6 novel classes never occur in
# training images and are left out of the training logits.
_base_ = './upernet_icar-swin-nano_fcn-aux_2k_ovdense-demo-ade.py'

width = 64  # the head's feature channels

model = dict(
    type='WithClassEmbeddings', base_type='EncoderDecoder',
    class_embeddings=dict(
        type='TrainedTowerClassEmbeddings', vocabulary={{_base_.vocabulary}},
        novel_classes={{_base_.novel_classes}},
        text_tower=dict(model='icar-roberta-nano', hf_dir={{_base_.text_tower_dir}}),
        prompts={{_base_.text_classifier.prompts}}),
    auxiliary_head=None,
    decode_head=dict(
        _delete_=True, type='TextMask2FormerHead', text_classifier=dict(scale=20.0),
        in_channels=[32, 64, 128, 256], strides=[4, 8, 16, 32], feat_channels=width,
        out_channels=width, num_queries=20, num_transformer_feat_level=3,
        align_corners=False, enforce_decoder_input_project=False,
        pixel_decoder=dict(
            type='mmdet.MSDeformAttnPixelDecoder', num_outs=3,
            norm_cfg=dict(type='GN', num_groups=16), act_cfg=dict(type='ReLU'),
            encoder=dict(num_layers=2, layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=width, num_heads=4, num_levels=3, num_points=4,
                                   im2col_step=64, dropout=0.0, batch_first=True,
                                   norm_cfg=None, init_cfg=None),
                ffn_cfg=dict(embed_dims=width, feedforward_channels=4 * width, num_fcs=2,
                             ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True))),
                init_cfg=None),
            positional_encoding=dict(num_feats=width // 2, normalize=True), init_cfg=None),
        positional_encoding=dict(num_feats=width // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True, num_layers=3, init_cfg=None,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=width, num_heads=4, attn_drop=0.0,
                                   proj_drop=0.0, dropout_layer=None, batch_first=True),
                cross_attn_cfg=dict(embed_dims=width, num_heads=4, attn_drop=0.0,
                                    proj_drop=0.0, dropout_layer=None, batch_first=True),
                ffn_cfg=dict(embed_dims=width, feedforward_channels=4 * width, num_fcs=2,
                             act_cfg=dict(type='ReLU', inplace=True), ffn_drop=0.0,
                             dropout_layer=None, add_identity=True))),
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                      reduction='mean', class_weight=[1.0, 0.1]),  # [class w, no-object w]
        loss_mask=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                       loss_weight=5.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True,
                       reduction='mean', naive_dice=True, eps=1.0, loss_weight=5.0),
        train_cfg=dict(
            num_points=2048, oversample_ratio=3.0, importance_sample_ratio=0.75,
            assigner=dict(type='mmdet.HungarianAssigner', match_costs=[
                dict(type='mmdet.ClassificationCost', weight=2.0),
                dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0)]),
            sampler=dict(type='mmdet.MaskPseudoSampler'))))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # reduce_zero_label: background pixels are ignored
    dict(type='RandomResize', scale=(160, 160), ratio_range=(0.8, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size={{_base_.crop_size}}),
    dict(type='RandomFlip', prob=0.5),  # no colour jitter: colour words are class names
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(reduce_zero_label=True, pipeline=train_pipeline))
custom_imports = dict(imports=['mmdet.models', 'ovdense'], allow_failed_imports=False)

# BALLAD phase A on the long-tailed demo data (tools/make_demo_data.py --profile long-tailed):
# the demo Mask R-CNN fine-tuned on EVERY class, most of them seen in only 1-100 images (LVIS
# 'r' / 'c' in the fine-tuned sense). Tested on all classes; the LVIS evaluator's APr / APc / APf
# follow the training image counts. Phase B: ballad_mask-rcnn_..._ovdense-demo-lvis-lt.py.
_base_ = ['./mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py']

data_root = 'data/ovdense_demo_lt/'
model = dict(roi_head=dict(bbox_head=dict(text_classifier=dict(
    vocabulary=data_root + 'vocab_det.json', text_tower=dict(hf_dir=data_root + 'text_tower'),
    novel_classes=None))))  # every class is a training target here

# A variable, so that phase B can wrap it in ClassBalancedDataset.
train_dataset = dict(type='OVLVISV1Dataset', data_root=data_root + 'lvis/',
                     ann_file='annotations/lvis_v1_train.json', data_prefix=dict(img=''),
                     remove_novel=False, filter_cfg=dict(filter_empty_gt=True, min_size=4),
                     pipeline={{_base_.train_pipeline}})
train_dataloader = dict(dataset=dict(_delete_=True, **train_dataset))
val_dataloader = dict(dataset=dict(data_root=data_root + 'lvis/'))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'lvis/annotations/lvis_v1_val.json')
test_evaluator = val_evaluator

# Control for the demo: the same detector with fixed random class embeddings (seeded by class
# name) instead of the text tower. Base classes can still be learnt (the projection adapts to
# the random targets); novel classes cannot, which is what the text classifier adds.
_base_ = './mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py'

model = dict(roi_head=dict(bbox_head=dict(text_classifier=dict(
    train_text_tower=False, random_embeddings=True))))

# Control for the Mask2Former segmentation demo: the same segmentor with fixed random class
# embeddings (seeded by class name, the text tower's size) instead of the text tower. Base
# classes can still be learnt (the projection adapts to the random targets); novel classes
# cannot.
_base_ = './mask2former_icar-swin-nano_2k_ovdense-demo-ade.py'

model = dict(class_embeddings=dict(
    _delete_=True, type='RandomClassEmbeddings', vocabulary={{_base_.vocabulary}},
    novel_classes={{_base_.novel_classes}},
    text_tower=dict(model='icar-roberta-nano', hf_dir={{_base_.text_tower_dir}})))

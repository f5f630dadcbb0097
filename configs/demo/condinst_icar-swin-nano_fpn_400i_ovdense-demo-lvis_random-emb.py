# Control for the one-stage demo: fixed random class embeddings instead of the text tower.
_base_ = './condinst_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py'

model = dict(bbox_head=dict(text_classifier=dict(train_text_tower=False,
                                                 random_embeddings=True)))

# Control for the segmentation demo: the same segmentor with fixed random class embeddings
# (seeded by class name) instead of the text tower, in both heads. Base classes can still be
# learnt (the projections adapt to the random targets); novel classes cannot.
_base_ = './upernet_icar-swin-nano_fcn-aux_2k_ovdense-demo-ade.py'

control = dict(train_text_tower=False, random_embeddings=True)
model = dict(decode_head=dict(text_classifier=control),
             auxiliary_head=dict(text_classifier=control))

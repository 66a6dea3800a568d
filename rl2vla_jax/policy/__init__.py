"""The one way to act with a VLA, shared by RL, SFT metrics, evaluation and predict_action:

preprocess  camera frames -> the model's uint8 images -> OpenVLA's 6-channel pixel values
sampling    sample the 7 action tokens (KV-cached) or score given ones (teacher forcing)
actions     action bins -> normalised [-1, 1] -> physical actions (norm stats)
act         the jitted act step: sample, entropies, descriptor, and the critic's value
episodes    one episode loop over a vector env; the RL `Rollout` it produces
loading     a checkpoint (or a random init) -> everything needed to act
"""

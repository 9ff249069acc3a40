from aecore.registry import Registry

MODELS = Registry("model")

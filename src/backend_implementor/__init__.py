"""bimpl: an AI backend implementor for TypeScript/Node/Express projects."""

__version__ = "0.1.0"

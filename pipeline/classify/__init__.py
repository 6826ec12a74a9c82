"""Classification: the text model and its evidence, multilingual embeddings, the model registry
(verified artefacts, promotion, rollback) and batch scoring."""

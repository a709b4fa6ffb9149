"""Running things: config, Lightning SSL training, checkpoint save/load, batch inference,
embedding export, the ranking step and the demo."""

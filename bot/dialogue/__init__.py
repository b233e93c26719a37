"""The conversation layer: Rasa 3.6 in the serving process with engine-backed custom actions."""

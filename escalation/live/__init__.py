"""The live (streaming) shell of the engine: broker, topics, settings, Faust wiring.

Importing this package is cheap: it imports neither Faust nor aiokafka. Submodules
that need them import them themselves.
"""

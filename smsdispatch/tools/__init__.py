"""Tools beside the product, not under it: the Twilio simulator, a local Kafka broker, the demo, the test kit.

Nothing in the product (contract, adapters, core, runtime, client) imports them; the CLI launches them. They
build on the contract, the adapters and the client.
"""

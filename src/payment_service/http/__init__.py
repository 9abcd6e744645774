"""The HTTP front door (aiohttp): turns requests into Kafka commands and awaits their results."""

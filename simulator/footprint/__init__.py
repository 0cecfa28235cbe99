"""Footprint: goodput, energy (IT x PUE), operational and hourly CO2e, embodied carbon, water, cost, uncertainty."""

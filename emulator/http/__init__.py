"""The HTTP adapters: parse a request, call `fal_emulator.service`, render fal's answer."""

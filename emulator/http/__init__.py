"""The HTTP adapters: parse a request, call `emulator.service`, render fal's answer."""

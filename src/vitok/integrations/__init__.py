"""Adapters to other libraries' interfaces (imported only when those libraries are installed)."""

"""Adapters that hand session_graph to agent frameworks, one module per framework.

Each needs its extra: ``pip install 'session-graph[langchain]'``, ``[openai-agents]`` or
``[langgraph]``. Importing a module without its framework raises an ``ImportError`` naming
the extra.
"""

"""SMTP reply codes and enhanced status codes: the project's single source of meaning."""

from .knowledge import (
    BASIC_SYNTAX,
    CLASS_NAMES,
    ENHANCED_SYNTAX,
    WEIGHTS,
    BasicCode,
    CodeError,
    EnhancedCode,
    KnowledgeBase,
    KnowledgeBaseError,
    knowledge_base,
)

__all__ = [
    "BASIC_SYNTAX",
    "CLASS_NAMES",
    "ENHANCED_SYNTAX",
    "WEIGHTS",
    "BasicCode",
    "CodeError",
    "EnhancedCode",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "knowledge_base",
]

"""OpenQASM 2.0 parameter expressions: pi, + - * / ^, sin cos tan exp ln sqrt, and the
parameters of a `gate` definition, evaluated by recursive descent over their tokens."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import CircuitError


@dataclass
class Token:
    kind: str
    text: str
    line: int


_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "ln": math.log,
    "sqrt": math.sqrt}


class Expression:
    """A parameter expression, evaluated by recursive descent over its tokens."""

    def __init__(self, tokens: list[Token], env: dict[str, float],
                 error: Callable[[str, int | None], CircuitError]) -> None:
        self.tokens = iter(tokens + [Token("end", "", tokens[-1].line)])
        self.env = env
        self.raise_ = error
        self.token = next(self.tokens)

    def advance(self) -> Token:
        token, self.token = self.token, next(self.tokens, self.token)
        return token

    def value(self) -> float:
        result = self.sum()
        if self.token.kind != "end":
            raise self.raise_(f"unexpected {self.token.text!r} in an expression", self.token.line)
        return result

    def sum(self) -> float:
        result = self.product()
        while self.token.text in ("+", "-"):
            sign = 1 if self.advance().text == "+" else -1
            result += sign * self.product()
        return result

    def product(self) -> float:
        result = self.power()
        while self.token.text in ("*", "/"):
            operator = self.advance().text
            operand = self.power()
            if operator == "/" and operand == 0:
                raise self.raise_("division by zero", self.token.line)
            result = result * operand if operator == "*" else result / operand
        return result

    def power(self) -> float:
        base = self.unary()
        if self.token.text == "^":
            self.advance()
            return float(base ** self.power())
        return base

    def unary(self) -> float:
        if self.token.text == "-":
            self.advance()
            return -self.unary()
        if self.token.text == "+":
            self.advance()
            return self.unary()
        return self.atom()

    def atom(self) -> float:
        token = self.advance()
        if token.kind in ("int", "real"):
            return float(token.text)
        if token.text == "pi":
            return math.pi
        if token.text == "(":
            result = self.sum()
            if self.advance().text != ")":
                raise self.raise_("expected ')'", token.line)
            return result
        if token.text in _FUNCTIONS and self.token.text == "(":
            self.advance()
            argument = self.sum()
            if self.advance().text != ")":
                raise self.raise_("expected ')'", token.line)
            return _FUNCTIONS[token.text](argument)
        if token.text in self.env:
            return self.env[token.text]
        raise self.raise_(f"unknown name {token.text!r} in an expression", token.line)

"""loudou (漏斗): the project sales funnel a B2B solution-sales organisation runs on."""

__version__ = "0.1.0"

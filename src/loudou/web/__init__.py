"""The web application sellers and managers work in: server-rendered pages with htmx."""

"""The readers of the CRM exports loudou imports: each turns the sheets of a file into `Parsed`
deals (and, for loudou's own template, accounts and contacts) without writing anything."""

from collections.abc import Callable

from loudou.interop.formats import hubspot, native, odoo, pipedrive, salesforce
from loudou.interop.formats.common import DealOptions
from loudou.interop.records import Parsed
from loudou.interop.tables import Sheet

Reader = Callable[[list[Sheet], DealOptions, dict[str, str] | None], Parsed]

READERS: dict[str, Reader] = {
    "native": native.parse,
    "salesforce": salesforce.parse,
    "hubspot": hubspot.parse,
    "pipedrive": pipedrive.parse,
    "odoo": odoo.parse,
}
# What each format reads, for help texts and the web page.
DESCRIPTIONS = {
    "native": "loudou's template: accounts, contacts, opportunities and history",
    "salesforce": "an Opportunity report or Data Loader export, optionally with OpportunityHistory",
    "hubspot": 'a deals export, with its "Date entered <stage>" columns as history',
    "pipedrive": "a deals export (Deal - Title, Deal - Stage, Deal - Status, …)",
    "odoo": "a crm.lead export (Opportunity, Customer, Stage, Expected Revenue, …)",
}

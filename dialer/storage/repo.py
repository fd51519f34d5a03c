"""The repository: every read and write the dialer does, each method one transaction.

Time is always passed in (``now``), never read here. Domain decisions (what an attempt means, when
to call next, how a contact changes) come from ``dialer.domain``; the storage only stores them
atomically together with the outbox events that announce them (transactional outbox: an event
exists if and only if its state change was committed). The storage never builds an event: the
:class:`~dialer.storage.notify.Notifier` it is given (the events package's ``EventNotifier``,
passed in by the composition root) turns the facts of a change into outbox rows.

:class:`Repository` puts together the stores of each client, one module each:

=========================  ==========================================  ==========================
module                     store                                       client
=========================  ==========================================  ==========================
dialer.storage.campaigns   :class:`Campaigns` (settings, windows)      everyone
dialer.storage.claims      :class:`Claims` (claim due contacts)        worker, lease keeper
dialer.storage.attempts    :class:`Attempts` (start, finish, recover)  worker, lease keeper
dialer.storage.contacts    :class:`ContactImport`                      import, services
dialer.storage.operator    :class:`OperatorResults`                    services (commands)
dialer.storage.exclusions  :class:`Exclusions`                         exclusions CLI, services
dialer.storage.numbering   :class:`Numbering`                          numbering import
dialer.storage.reports     :class:`Reports` (status, export, show)     CLI, app status
dialer.storage.outbox      :class:`Outbox`                             publisher
dialer.storage.commands    :class:`CommandLog` (command ids)           command subscriber
=========================  ==========================================  ==========================

The worker depends on :class:`dialer.storage.dialling.DiallingStore` only.
"""

from __future__ import annotations

from dialer.storage.attempts import Attempts
from dialer.storage.claims import Claims
from dialer.storage.commands import CommandLog
from dialer.storage.contacts import ContactImport
from dialer.storage.db import Database
from dialer.storage.exclusions import Exclusions
from dialer.storage.migrate import ensure_current
from dialer.storage.notify import Notifier
from dialer.storage.numbering import Numbering
from dialer.storage.operator import OperatorResults
from dialer.storage.outbox import Outbox
from dialer.storage.reports import Reports

__all__ = ["Repository"]


class Repository(Claims, Attempts, ContactImport, OperatorResults, Exclusions, Numbering, Reports, Outbox, CommandLog):
    """All persistence of the dialer. Build with :meth:`open`, which checks the schema."""

    @classmethod
    async def open(cls, db: Database, notifier: Notifier) -> Repository:
        await ensure_current(db)
        return cls(db, notifier)

"""The console's panes: thin widgets, data down (a snapshot assigned to a reactive), events up."""

from console.panes.command import CommandInput
from console.panes.log import LogPane
from console.panes.mesh import MeshPane
from console.panes.peers import PeersPane
from console.panes.scores import ScoresPane
from console.panes.sessions import SessionsPane

__all__ = ["CommandInput", "LogPane", "MeshPane", "PeersPane", "ScoresPane", "SessionsPane"]

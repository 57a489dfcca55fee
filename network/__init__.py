"""Network paths between the client and the backend: named conditions applied by a
shaping relay on loopback, a real reverse proxy (nginx), and the probes that say
how close the emulation came (round trip, client/server clock offset).

See docs/networks.md. The core is pure (:mod:`.conditions`, :mod:`.shaper`,
:mod:`.clock`); :mod:`.relay`, :mod:`.probe` and :mod:`.nginx` do the I/O.
"""

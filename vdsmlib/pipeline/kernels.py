"""The kernel manager papermill starts notebook kernels with (:func:`.run.kernel_config`).

jupyter_client interrupts a kernel (SIGINT) before it asks it to shut down; an idle ipykernel
then logs ``[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.`` on the console of every
build, green ones too. A kernel papermill shuts down has finished its cells, so there is
nothing to interrupt: the shutdown request alone ends it (and a kernel that does not end is
killed as before).
"""

from __future__ import annotations

from jupyter_client.manager import AsyncKernelManager

__all__ = ["QuietShutdownKernelManager"]


class QuietShutdownKernelManager(AsyncKernelManager):
    """An :class:`AsyncKernelManager` that does not interrupt a kernel it shuts down."""

    async def _async_interrupt_kernel(self) -> None:
        if self.shutting_down:
            return
        await super()._async_interrupt_kernel()

"""Writes N customer rows twice: the import file (no tenant) and the same
rows with the tenant for the raw COPY baseline. Unique NPWP, e-mail, phone."""
import sys

n, import_path, copy_path, tenant = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cities = ["Jakarta", "Surabaya", "Bandung", "Medan", "Semarang", "Makassar"]
with open(import_path, "w") as imp, open(copy_path, "w") as cp:
    imp.write("company_name,npwp,email,phone,city\n")
    cp.write("tenant_id,company_name,npwp,email,phone,city\n")
    for i in range(1, n + 1):
        digits = f"{i:09d}"
        npwp = f"{digits[0:2]}.{digits[2:5]}.{digits[5:8]}.{digits[8]}-{(i * 7) % 1000:03d}.000"
        row = f"PT Pelanggan {i} Sejahtera,{npwp},finance{i}@pelanggan{i % 9973}.co.id,+62 812 {i // 10000:04d} {i % 10000:04d},{cities[i % 6]}\n"
        imp.write(row)
        cp.write(f"{tenant},{row}")
